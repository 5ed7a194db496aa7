// CudaDevice: the Device backend on a real NVIDIA GPU, through the CUDA
// runtime API.
//
//  - LMEM ("lmem") is device memory: one cudaMalloc pool of `lmem_bytes`,
//    sub-allocated by the region's BuddyAllocator. The CPU cannot reach it
//    (no BAR mapping), so its aperture is 0, like i915's small-BAR parts:
//    CpuMap refuses every non-empty LMEM range with FAILED_PRECONDITION and a
//    failed blit into or out of LMEM has no CPU fallback.
//  - SMEM ("smem") is pinned host memory: one cudaHostAlloc pool (portable,
//    mapped) of `smem_bytes`, CPU-visible in full. Both pools are zeroed at
//    creation.
//  - The copy engine (CopyEngine, device.h) keeps one stream per direction:
//    commands that write LMEM run on the "to device" stream, the rest (writes
//    to SMEM or host memory, checksums) on the "to host" stream. Copies are
//    cudaMemcpyAsync (one call per contiguous run: adjacent blocks are
//    merged), fills are cudaMemsetAsync, and each command's fence is
//    signalled by a cudaLaunchHostFunc host function queued behind it.
//  - The fallback path (Device::FallbackCopy/FallbackFill) is independent of
//    the engine: its own high-priority stream, synchronous, LMEM-to-LMEM
//    copies staged through a pinned bounce buffer. It does not consult the
//    FaultInjector (the Migrator gates it with MemcpyBanned). A failsafe work
//    must use it and never wait for an engine command of its own: the
//    submission thread may be waiting for that failsafe's fence.
//
// Ordering (the CopyEngine contract: submission order). Commands are
// serialised in one global order across both streams: each command's GPU
// work waits (cudaStreamWaitEvent) for the event recorded after the previous
// command when that one ran on the other stream, so command N+1 never starts
// before command N (its host function included) has finished, and fences
// signal in seqno order. Dependencies on this engine's own fences are
// therefore already satisfied on the GPU and only their error is consulted;
// dependencies on other fences (failsafe works, eviction timelines, test
// gates) cannot become CUDA events, so the engine's submission thread waits
// for them on the host before it queues the command. A command whose
// dependency failed is not executed: its fence signals the first failed
// dependency's error, in order. cuda_copy_engine.cc describes the threads.
//
// Errors: every CUDA call's status is checked. A call that fails while a
// command is being queued fails that command with INTERNAL "<call>: <CUDA
// error name>: <text>"; an asynchronous error (reported when the engine's
// completion thread synchronises on a command's event) fails that command the
// same way. A sticky error (the CUDA context is lost) fails every later
// command with INTERNAL "copy engine failed: ..." -- fences still signal.
//
// Fault injection is the sim's: EngineWedged() (scoped by the region the
// command writes, or reads for Checksum/ReadToHost) skips the command with
// INTERNAL "copy engine wedged"; EngineLatency() delays it on the submission
// thread; `inject_failure` makes a copy cudaMemsetAsync its destination range
// to 0 and a fill do nothing, then both signal INTERNAL "injected blit
// failure".
//
// Fence callbacks of engine fences run on the CUDA runtime's host-function
// thread (or the engine's completion thread). Fence callbacks must never
// block (fence.h); here that rule also keeps every stream of the device
// moving, and they must not call CUDA.
//
// Lifetime: every SgTable allocated from the regions must be dropped before
// the device is destroyed. The destructor shuts the engine down (queued
// commands complete and drop their references) and frees the pools.
// Shutdown() from a fence callback only stops the engine.
//
// Thread-safe.
#ifndef GPUMIG_CORE_DEVICE_CUDA_CUDA_DEVICE_H_
#define GPUMIG_CORE_DEVICE_CUDA_CUDA_DEVICE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/device/device.h"
#include "core/fault/fault_injector.h"
#include "core/mem/region.h"
#include "core/mem/sg_table.h"

namespace gpumig {

struct CudaDeviceConfig {
  int device_ordinal = 0;
  uint64_t lmem_bytes = 0;  // device memory pool; multiple of chunk_size
  uint64_t smem_bytes = 0;  // pinned host memory pool; multiple of chunk_size
  uint64_t chunk_size = 4096;  // buddy chunk; a power of two >= 4 KiB
  std::string lmem_name = "lmem";
  std::string smem_name = "smem";
};

// The checks Create() makes before touching CUDA, for config validation
// (no GPU needed). INVALID_ARGUMENT "cuda device: ..." for a size of 0 or not
// a multiple of chunk_size, a chunk_size that is not a power of two >= 4 KiB,
// or region names that are empty or equal.
absl::Status ValidateCudaDeviceConfig(const CudaDeviceConfig& config);

// What the fallback path did since creation (monotonic).
struct CudaFallbackCounters {
  uint64_t copies = 0;    // FallbackCopy calls that succeeded
  uint64_t fills = 0;     // FallbackFill calls that succeeded
  uint64_t bytes = 0;     // bytes they wrote
  uint64_t failures = 0;  // calls that returned INTERNAL
};

// One contiguous run of region memory, by unified (UVA) address: a device
// pointer for LMEM, the pinned host pointer for SMEM.
struct CudaRun {
  void* address = nullptr;
  uint64_t size = 0;
  bool device_memory = false;  // LMEM
};

class CudaDevice : public Device {
 public:
  // The number of CUDA devices this process can use. UNAVAILABLE "no
  // CUDA-capable GPU: cudaGetDeviceCount: <CUDA's text>" when the driver or
  // the GPU is missing, "no CUDA-capable GPU: cudaGetDeviceCount found 0
  // devices" when it reports none, and "built without the CUDA toolkit ..."
  // in a build without it. Tests skip on any error.
  static absl::StatusOr<int> Probe();

  // Checks the config first (INVALID_ARGUMENT, before touching CUDA: size 0
  // or not a multiple of chunk_size, chunk_size not a power of two >= 4 KiB,
  // empty or equal region names), then the GPU (Probe()'s UNAVAILABLE;
  // INVALID_ARGUMENT for an ordinal with no device; FAILED_PRECONDITION for
  // a device without unified addressing), then allocates
  // (RESOURCE_EXHAUSTED if a pool does not fit; INTERNAL for other CUDA
  // errors). `faults` may be null; it must outlive the device.
  static absl::StatusOr<std::unique_ptr<CudaDevice>> Create(
      const CudaDeviceConfig& config, FaultInjector* faults);

  CudaDevice(const CudaDevice&) = delete;
  CudaDevice& operator=(const CudaDevice&) = delete;
  // Calls Shutdown(), then frees the pools. Must not run in a fence callback.
  ~CudaDevice() override;

  absl::string_view backend() const override { return "cuda"; }
  // e.g. "cuda device 0: NVIDIA H100 80GB HBM3 (sm_90, 79 GiB), lmem 1 GiB
  // device memory (no CPU aperture), smem 1 GiB pinned host memory".
  std::string description() const override;
  std::vector<Region*> regions() const override;
  CopyEngine& engine() override;

  // SMEM: the host spans. LMEM: FAILED_PRECONDITION "region lmem: offset N
  // is outside the CPU-visible aperture (0 bytes)" for any non-empty range.
  // INVALID_ARGUMENT: a table of another device, or a range outside it.
  // Length 0 maps nothing and succeeds.
  absl::StatusOr<std::vector<absl::Span<uint8_t>>> CpuMap(
      const SgTable& table, uint64_t offset, uint64_t length) override;

  // Drains the engine and joins its threads; later commands signal ABORTED
  // "device shut down". The fallback path keeps working. Idempotent.
  void Shutdown() override;

  // Device::FallbackCopy/FallbackFill: see device.h and the file comment.
  // One call at a time (serialised on the fallback stream).
  absl::Status FallbackCopy(const SgTable& src, uint64_t src_offset,
                            const SgTable& dst, uint64_t dst_offset,
                            uint64_t length) override;
  absl::Status FallbackFill(const SgTable& dst, uint64_t offset,
                            uint64_t length, uint8_t value) override;
  CudaFallbackCounters fallback_counters() const;

  // OK while the copy engine works; INTERNAL "copy engine failed: ..." once
  // a CUDA error lost the context (every later command then fails; health
  // checks should report it). Shutting down is not a failure.
  absl::Status EngineStatus() const;

  // The unified addresses behind [offset, offset + length) of `table`, one
  // run per contiguous piece, for benchmarks and tests that compare against
  // raw CUDA calls. INVALID_ARGUMENT as CpuMap. Never refused for LMEM.
  absl::StatusOr<std::vector<CudaRun>> Runs(const SgTable& table,
                                            uint64_t offset,
                                            uint64_t length) const;

  int device_ordinal() const;

 private:
  class Impl;  // cuda_device.cc (cuda_device_stub.cc without the toolkit)
  explicit CudaDevice(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace gpumig

#endif  // GPUMIG_CORE_DEVICE_CUDA_CUDA_DEVICE_H_
