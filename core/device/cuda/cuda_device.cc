// CudaDevice and its fallback path: see cuda_device.h. The copy engine is
// cuda_copy_engine.cc; CUDA helpers shared by both are cuda_helpers.h.
#include "core/device/cuda/cuda_device.h"

#include <cuda_runtime_api.h>
#include <driver_types.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "core/base/mutex.h"
#include "core/device/cuda/cuda_copy_engine.h"
#include "core/device/cuda/cuda_helpers.h"

namespace gpumig {
namespace {

// Pinned bounce buffer of the fallback path (LMEM-to-LMEM copies, LMEM
// fills).
constexpr uint64_t kBounceBytes = 8ull << 20;

}  // namespace

using cuda_internal::CudaCopyEngine;
using cuda_internal::CudaMemory;
using cuda_internal::CudaResult;
using cuda_internal::CudaStatus;
using cuda_internal::HumanBytes;
using cuda_internal::Piece;
using cuda_internal::ScopedCudaDevice;

class CudaDevice::Impl {
 public:
  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    if (engine != nullptr) engine->Shutdown();
    engine.reset();
    ScopedCudaDevice device(memory.ordinal);
    if (fallback_stream != nullptr) {
      (void)cudaStreamSynchronize(fallback_stream);
      (void)cudaStreamDestroy(fallback_stream);
    }
    if (bounce != nullptr) (void)cudaFreeHost(bounce);
    lmem.reset();
    smem.reset();
    if (memory.lmem_base != nullptr) (void)cudaFree(memory.lmem_base);
    if (memory.smem_host != nullptr) (void)cudaFreeHost(memory.smem_host);
  }

  // Both tables ours, ranges inside them.
  absl::Status Check(const SgTable* table, uint64_t offset, uint64_t length,
                     absl::string_view what) const {
    return cuda_internal::CheckTable(memory, table, offset, length, what);
  }

  absl::Status FallbackCopy(const SgTable& src, uint64_t src_offset,
                            const SgTable& dst, uint64_t dst_offset,
                            uint64_t length) {
    if (absl::Status s = Check(&src, src_offset, length, "source"); !s.ok()) {
      return s;
    }
    if (absl::Status s = Check(&dst, dst_offset, length, "destination");
        !s.ok()) {
      return s;
    }
    if (&src == &dst &&
        cuda_internal::RangesOverlap(src_offset, dst_offset, length)) {
      return absl::InvalidArgumentError(
          "fallback copy: overlapping ranges of one table");
    }
    if (length == 0) return absl::OkStatus();
    MutexLock lock(&fallback_mu_);
    const CudaResult r =
        FallbackCopyLocked(src, src_offset, dst, dst_offset, length);
    return Account(r, "fallback copy", length, &fallback_copies);
  }

  absl::Status FallbackFill(const SgTable& dst, uint64_t offset,
                            uint64_t length, uint8_t value) {
    if (absl::Status s = Check(&dst, offset, length, "destination"); !s.ok()) {
      return s;
    }
    if (length == 0) return absl::OkStatus();
    MutexLock lock(&fallback_mu_);
    const CudaResult r = FallbackFillLocked(dst, offset, length, value);
    return Account(r, "fallback fill", length, &fallback_fills);
  }

  absl::Status Account(const CudaResult& r, absl::string_view what,
                       uint64_t length, std::atomic<uint64_t>* counter) {
    if (!r.ok()) {
      fallback_failures.fetch_add(1, std::memory_order_relaxed);
      return absl::InternalError(
          absl::StrCat(what, " failed: ", r.ToStatus().message()));
    }
    counter->fetch_add(1, std::memory_order_relaxed);
    fallback_bytes.fetch_add(length, std::memory_order_relaxed);
    return absl::OkStatus();
  }

  // The fallback path: synchronous, on the fallback stream (not the
  // engine's), with its own mechanism where the engine has one: LMEM to LMEM
  // is staged through the pinned bounce buffer (device-to-host then
  // host-to-device) instead of the engine's device-to-device copy; SMEM to
  // SMEM is a CPU memcpy.
  CudaResult FallbackCopyLocked(const SgTable& src, uint64_t src_offset,
                                const SgTable& dst, uint64_t dst_offset,
                                uint64_t length)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(fallback_mu_) {
    ScopedCudaDevice device(memory.ordinal);
    if (device.status() != cudaSuccess)
      return {device.status(), "cudaSetDevice"};
    const bool src_lmem = memory.IsLmem(src.region());
    const bool dst_lmem = memory.IsLmem(dst.region());
    cudaStream_t stream = fallback_stream;
    const CudaResult queued = cuda_internal::ForEachPair(
        cuda_internal::PiecesOf(src, src_offset, length),
        cuda_internal::PiecesOf(dst, dst_offset, length),
        [&](uint64_t s, uint64_t d, uint64_t n) -> CudaResult {
          if (!src_lmem && !dst_lmem) {
            memcpy(memory.smem_host + d, memory.smem_host + s, n);
            return {};
          }
          if (src_lmem && dst_lmem) {
            // The stream orders each chunk's second copy out of the bounce
            // buffer before the next chunk's first copy into it.
            for (uint64_t done = 0; done < n;) {
              const uint64_t c = std::min<uint64_t>(kBounceBytes, n - done);
              GPUMIG_CUDA_TRY(
                  "cudaMemcpyAsync",
                  cudaMemcpyAsync(bounce, memory.lmem_base + s + done, c,
                                  cudaMemcpyDeviceToHost, stream));
              GPUMIG_CUDA_TRY(
                  "cudaMemcpyAsync",
                  cudaMemcpyAsync(memory.lmem_base + d + done, bounce, c,
                                  cudaMemcpyHostToDevice, stream));
              done += c;
            }
            return {};
          }
          GPUMIG_CUDA_TRY(
              "cudaMemcpyAsync",
              cudaMemcpyAsync(memory.CopyAddress(dst.region(), d),
                              memory.CopyAddress(src.region(), s), n,
                              cuda_internal::KindOf(src_lmem, dst_lmem),
                              stream));
          return {};
        });
    // Drain whatever was queued, even after a failure.
    const cudaError_t sync = cudaStreamSynchronize(stream);
    if (!queued.ok()) {
      (void)cudaGetLastError();
      return queued;
    }
    if (sync != cudaSuccess) return {sync, "cudaStreamSynchronize"};
    return {};
  }

  // LMEM: host-to-device copies out of the bounce buffer, set to `value` by
  // CPU (the engine's fill is a memset kernel); SMEM: CPU memset.
  CudaResult FallbackFillLocked(const SgTable& dst, uint64_t offset,
                                uint64_t length, uint8_t value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(fallback_mu_) {
    ScopedCudaDevice device(memory.ordinal);
    if (device.status() != cudaSuccess)
      return {device.status(), "cudaSetDevice"};
    const bool lmem = memory.IsLmem(dst.region());
    if (!lmem) {
      for (const Piece& p : cuda_internal::PiecesOf(dst, offset, length)) {
        memset(memory.smem_host + p.offset, value, p.size);
      }
      return {};
    }
    cudaStream_t stream = fallback_stream;
    // The stream is idle (calls are serialised and synchronous), so the
    // bounce buffer is free to rewrite.
    memset(bounce, value, std::min<uint64_t>(kBounceBytes, length));
    CudaResult queued;
    for (const Piece& p : cuda_internal::PiecesOf(dst, offset, length)) {
      for (uint64_t done = 0; done < p.size && queued.ok();) {
        const uint64_t c = std::min<uint64_t>(kBounceBytes, p.size - done);
        const cudaError_t e =
            cudaMemcpyAsync(memory.lmem_base + p.offset + done, bounce, c,
                            cudaMemcpyHostToDevice, stream);
        if (e != cudaSuccess) queued = {e, "cudaMemcpyAsync"};
        done += c;
      }
      if (!queued.ok()) break;
    }
    const cudaError_t sync = cudaStreamSynchronize(stream);
    if (!queued.ok()) {
      (void)cudaGetLastError();
      return queued;
    }
    if (sync != cudaSuccess) return {sync, "cudaStreamSynchronize"};
    return {};
  }

  // Constant after construction.
  CudaMemory memory;
  std::unique_ptr<Region> lmem;
  std::unique_ptr<Region> smem;
  std::string description;
  cudaStream_t fallback_stream = nullptr;
  uint8_t* bounce = nullptr;  // pinned, kBounceBytes
  // Declared after the memory it uses; destroyed first by ~Impl().
  std::unique_ptr<CudaCopyEngine> engine;

  absl::Mutex fallback_mu_;  // one fallback call at a time (bounce, stream)
  std::atomic<uint64_t> fallback_copies{0};
  std::atomic<uint64_t> fallback_fills{0};
  std::atomic<uint64_t> fallback_bytes{0};
  std::atomic<uint64_t> fallback_failures{0};
};

absl::StatusOr<int> CudaDevice::Probe() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return absl::UnavailableError(absl::StrCat(
        "no CUDA-capable GPU: cudaGetDeviceCount: ", cudaGetErrorString(e)));
  }
  if (count <= 0) {
    return absl::UnavailableError(
        "no CUDA-capable GPU: cudaGetDeviceCount found 0 devices");
  }
  return count;
}

namespace {

absl::Status AllocationError(absl::string_view call, absl::string_view pool,
                             uint64_t bytes, cudaError_t e) {
  const std::string what =
      absl::StrCat(call, "(", pool, ", ", HumanBytes(bytes), ")");
  if (e == cudaErrorMemoryAllocation) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": ", cudaGetErrorString(e)));
  }
  return CudaStatus(what, e);
}

}  // namespace

absl::StatusOr<std::unique_ptr<CudaDevice>> CudaDevice::Create(
    const CudaDeviceConfig& config, FaultInjector* faults) {
  if (absl::Status s = ValidateCudaDeviceConfig(config); !s.ok()) return s;
  auto impl = std::make_unique<Impl>();
  {
    absl::StatusOr<std::unique_ptr<Region>> lmem = Region::Create(
        RegionConfig{config.lmem_name, RegionKind::kLmem, config.lmem_bytes,
                     /*aperture=*/0, config.chunk_size});
    if (!lmem.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cuda device: ", lmem.status().message()));
    }
    absl::StatusOr<std::unique_ptr<Region>> smem = Region::Create(
        RegionConfig{config.smem_name, RegionKind::kSmem, config.smem_bytes,
                     config.smem_bytes, config.chunk_size});
    if (!smem.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cuda device: ", smem.status().message()));
    }
    impl->lmem = *std::move(lmem);
    impl->smem = *std::move(smem);
  }

  absl::StatusOr<int> count = Probe();
  if (!count.ok()) return count.status();
  if (config.device_ordinal < 0 || config.device_ordinal >= *count) {
    return absl::InvalidArgumentError(
        absl::StrCat("cuda device: device_ordinal ", config.device_ordinal,
                     " does not exist (", *count, " CUDA device(s))"));
  }
  const int ordinal = config.device_ordinal;
  ScopedCudaDevice device(ordinal);
  if (device.status() != cudaSuccess) {
    return CudaStatus("cudaSetDevice", device.status());
  }
  int uva = 0;
  cudaError_t e =
      cudaDeviceGetAttribute(&uva, cudaDevAttrUnifiedAddressing, ordinal);
  if (e != cudaSuccess) return CudaStatus("cudaDeviceGetAttribute", e);
  if (uva == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cuda device ", ordinal,
                     ": no unified addressing (required for "
                     "mapped pinned memory)"));
  }
  cudaDeviceProp prop;
  e = cudaGetDeviceProperties(&prop, ordinal);
  if (e != cudaSuccess) return CudaStatus("cudaGetDeviceProperties", e);

  impl->memory.ordinal = ordinal;
  impl->memory.lmem = impl->lmem.get();
  impl->memory.smem = impl->smem.get();
  void* p = nullptr;
  e = cudaMalloc(&p, config.lmem_bytes);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return AllocationError("cudaMalloc", config.lmem_name, config.lmem_bytes,
                           e);
  }
  impl->memory.lmem_base = static_cast<uint8_t*>(p);
  e = cudaHostAlloc(&p, config.smem_bytes,
                    cudaHostAllocPortable | cudaHostAllocMapped);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return AllocationError("cudaHostAlloc", config.smem_name, config.smem_bytes,
                           e);
  }
  impl->memory.smem_host = static_cast<uint8_t*>(p);
  e = cudaHostGetDevicePointer(&p, impl->memory.smem_host, 0);
  if (e != cudaSuccess) return CudaStatus("cudaHostGetDevicePointer", e);
  impl->memory.smem_device = static_cast<uint8_t*>(p);
  e = cudaHostAlloc(&p, kBounceBytes, cudaHostAllocPortable);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return AllocationError("cudaHostAlloc", "bounce", kBounceBytes, e);
  }
  impl->bounce = static_cast<uint8_t*>(p);
  int least = 0, greatest = 0;
  e = cudaDeviceGetStreamPriorityRange(&least, &greatest);
  if (e != cudaSuccess) {
    return CudaStatus("cudaDeviceGetStreamPriorityRange", e);
  }
  e = cudaStreamCreateWithPriority(&impl->fallback_stream,
                                   cudaStreamNonBlocking, greatest);
  if (e != cudaSuccess) {
    impl->fallback_stream = nullptr;
    return CudaStatus("cudaStreamCreateWithPriority", e);
  }

  // Nobody reads another process's (or our last run's) bytes: zero both.
  e = cudaMemsetAsync(impl->memory.lmem_base, 0, config.lmem_bytes,
                      impl->fallback_stream);
  if (e == cudaSuccess) e = cudaStreamSynchronize(impl->fallback_stream);
  if (e != cudaSuccess) return CudaStatus("zeroing lmem: cudaMemsetAsync", e);
  memset(impl->memory.smem_host, 0, config.smem_bytes);

  absl::StatusOr<std::unique_ptr<CudaCopyEngine>> engine =
      CudaCopyEngine::Create(&impl->memory, faults);
  if (!engine.ok()) return engine.status();
  impl->engine = *std::move(engine);

  impl->description = absl::StrCat(
      "cuda device ", ordinal, ": ", prop.name, " (sm_", prop.major, prop.minor,
      ", ",
      absl::StrFormat("%.1f GiB", prop.totalGlobalMem / double(1ull << 30)),
      "), ", config.lmem_name, " ", HumanBytes(config.lmem_bytes),
      " device memory (no CPU aperture), ", config.smem_name, " ",
      HumanBytes(config.smem_bytes), " pinned host memory");
  return std::unique_ptr<CudaDevice>(new CudaDevice(std::move(impl)));
}

CudaDevice::CudaDevice(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CudaDevice::~CudaDevice() = default;

std::string CudaDevice::description() const { return impl_->description; }

std::vector<Region*> CudaDevice::regions() const {
  return {impl_->lmem.get(), impl_->smem.get()};
}

CopyEngine& CudaDevice::engine() { return *impl_->engine; }

absl::StatusOr<std::vector<absl::Span<uint8_t>>> CudaDevice::CpuMap(
    const SgTable& table, uint64_t offset, uint64_t length) {
  if (absl::Status s = impl_->Check(&table, offset, length, "mapped");
      !s.ok()) {
    return s;
  }
  std::vector<absl::Span<uint8_t>> spans;
  const Region& region = *table.region();
  const bool lmem = impl_->memory.IsLmem(&region);
  for (const Piece& p : cuda_internal::PiecesOf(table, offset, length)) {
    if (lmem) {
      // Aperture 0: no byte of LMEM is CPU-visible.
      return absl::FailedPreconditionError(
          absl::StrCat("region ", region.name(), ": offset ", p.offset,
                       " is outside the CPU-visible aperture (0 bytes)"));
    }
    spans.emplace_back(impl_->memory.smem_host + p.offset, p.size);
  }
  return spans;
}

void CudaDevice::Shutdown() {
  if (impl_->engine != nullptr) impl_->engine->Shutdown();
}

absl::Status CudaDevice::FallbackCopy(const SgTable& src, uint64_t src_offset,
                                      const SgTable& dst, uint64_t dst_offset,
                                      uint64_t length) {
  return impl_->FallbackCopy(src, src_offset, dst, dst_offset, length);
}

absl::Status CudaDevice::FallbackFill(const SgTable& dst, uint64_t offset,
                                      uint64_t length, uint8_t value) {
  return impl_->FallbackFill(dst, offset, length, value);
}

CudaFallbackCounters CudaDevice::fallback_counters() const {
  CudaFallbackCounters c;
  c.copies = impl_->fallback_copies.load(std::memory_order_relaxed);
  c.fills = impl_->fallback_fills.load(std::memory_order_relaxed);
  c.bytes = impl_->fallback_bytes.load(std::memory_order_relaxed);
  c.failures = impl_->fallback_failures.load(std::memory_order_relaxed);
  return c;
}

absl::StatusOr<std::vector<CudaRun>> CudaDevice::Runs(const SgTable& table,
                                                      uint64_t offset,
                                                      uint64_t length) const {
  if (absl::Status s = impl_->Check(&table, offset, length, "table"); !s.ok()) {
    return s;
  }
  const bool lmem = impl_->memory.IsLmem(table.region());
  std::vector<CudaRun> runs;
  for (const Piece& p : cuda_internal::PiecesOf(table, offset, length)) {
    runs.push_back(CudaRun{impl_->memory.CopyAddress(table.region(), p.offset),
                           p.size, lmem});
  }
  return runs;
}

absl::Status CudaDevice::EngineStatus() const {
  return impl_->engine->failed();
}

int CudaDevice::device_ordinal() const { return impl_->memory.ordinal; }

}  // namespace gpumig
