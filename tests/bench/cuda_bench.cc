// Migration throughput on a real GPU through MemoryManager on a CudaDevice,
// against two baselines measured in the same run:
//   raw_memcpy_async  cudaMemcpyAsync + cudaStreamSynchronize between tables
//                     allocated from the same pinned SMEM pool and the same
//                     device LMEM pool the objects live in;
//   managed_prefetch  cudaMemPrefetchAsync of the same number of bytes of
//                     cudaMallocManaged memory, to the GPU (h2d) or back to
//                     the CPU (d2h), + cudaStreamSynchronize.
// "migrate" is MemoryManager::Migrate + WaitFence: the copy engine's blit
// and the failsafe work, as a client sees it. Each timed op is one transfer
// and its wait; moving the bytes back for the next op is not timed.
//
//   bazel run -c opt //tests/bench:cuda_bench [-- --seconds=0.5 --device=0
//       --max_size=1073741824]
//
// Prints one JSON array; a row per measurement:
//   {"case": "migrate"|"raw_memcpy_async"|"managed_prefetch",
//    "direction": "h2d"|"d2h", "size_bytes": 4096|1048576|67108864|
//    1073741824, "ops_per_s": X, "gbps": Y, "ratio_to_raw": R}
// (GB/s are 1e9 bytes per second; ratio_to_raw divides by the raw row of the
// same size and direction.) A summary of the goals -- migrate >= 0.9 x raw at
// 64 MiB and above, and faster than managed_prefetch -- goes to stderr.
//
// Exit status: 0 after printing the rows; 77 (the conventional "skipped")
// with {"skipped": true, "error": "..."} when there is no GPU or the build
// has no CUDA toolkit; 1 with {"error": "..."} when a CUDA call or a
// migration fails.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/json.h"
#include "core/device/cuda/cuda_device.h"
#include "core/manager/memory_manager.h"

#if GPUMIG_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

ABSL_FLAG(double, seconds, 0.5, "minimum measuring time per row");
ABSL_FLAG(int, min_iters, 3, "minimum timed operations per row");
ABSL_FLAG(int, device, 0, "CUDA device ordinal");
ABSL_FLAG(uint64_t, max_size, 1ull << 30,
          "skip object sizes above this (bytes); regions are 2x the largest");

namespace gpumig {
namespace {

[[noreturn]] void Skip(absl::string_view why) {
  std::printf("{\"skipped\": true, \"error\": \"%s\"}\n",
              JsonEscape(why).c_str());
  std::exit(77);
}

#if GPUMIG_HAVE_CUDA

[[noreturn]] void Fail(absl::string_view why) {
  std::printf("{\"error\": \"%s\"}\n", JsonEscape(why).c_str());
  std::exit(1);
}

struct Row {
  std::string c, direction;
  uint64_t size = 0;
  double ops_per_s = 0, gbps = 0;
};

void Check(cudaError_t e, absl::string_view what) {
  if (e != cudaSuccess) {
    Fail(absl::StrCat(what, ": ", cudaGetErrorName(e), ": ",
                      cudaGetErrorString(e)));
  }
}

// Runs setup() (untimed) then op() (timed) until at least --seconds of op()
// and --min_iters ops; one untimed warm-up first. Returns ops per second.
double Measure(const std::function<void()>& setup,
               const std::function<void()>& op) {
  setup();
  op();  // Warm up: page tables, caches, lazy driver state.
  const absl::Duration min = absl::Seconds(absl::GetFlag(FLAGS_seconds));
  const int min_iters = absl::GetFlag(FLAGS_min_iters);
  absl::Duration timed;
  int n = 0;
  while (timed < min || n < min_iters) {
    setup();
    const absl::Time t0 = absl::Now();
    op();
    timed += absl::Now() - t0;
    ++n;
  }
  return n / absl::ToDoubleSeconds(timed);
}

void AddRows(std::vector<Row>* rows, const std::string& c, uint64_t size,
             double h2d_ops, double d2h_ops) {
  rows->push_back({c, "h2d", size, h2d_ops, h2d_ops * size / 1e9});
  rows->push_back({c, "d2h", size, d2h_ops, d2h_ops * size / 1e9});
}

// The only CUDA run of `table` (tables of a power-of-two size in an empty
// region are one buddy block).
void* OnlyRun(const CudaDevice& device, const SgTable& table) {
  absl::StatusOr<std::vector<CudaRun>> runs =
      device.Runs(table, 0, table.size());
  if (!runs.ok()) Fail(runs.status().ToString());
  if (runs->size() != 1) Fail("raw baseline table is not contiguous");
  return (*runs)[0].address;
}

void RawRows(CudaDevice& device, cudaStream_t stream, uint64_t size,
             std::vector<Row>* rows) {
  Region* lmem = *device.FindRegion("lmem");
  Region* smem = *device.FindRegion("smem");
  absl::StatusOr<SgTableRef> s = smem->Allocate(size, false);
  absl::StatusOr<SgTableRef> l = lmem->Allocate(size, false);
  if (!s.ok() || !l.ok()) Fail("raw baseline: cannot allocate");
  void* host = OnlyRun(device, **s);
  void* dev = OnlyRun(device, **l);
  std::memset(host, 0x5A, size);
  auto copy = [&](void* dst, const void* src, cudaMemcpyKind kind) {
    Check(cudaMemcpyAsync(dst, src, size, kind, stream), "cudaMemcpyAsync");
    Check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  };
  const double h2d =
      Measure([] {}, [&] { copy(dev, host, cudaMemcpyHostToDevice); });
  const double d2h =
      Measure([] {}, [&] { copy(host, dev, cudaMemcpyDeviceToHost); });
  AddRows(rows, "raw_memcpy_async", size, h2d, d2h);
}

void PrefetchRows(int ordinal, cudaStream_t stream, uint64_t size,
                  std::vector<Row>* rows) {
  void* managed = nullptr;
  Check(cudaMallocManaged(&managed, size, cudaMemAttachGlobal),
        "cudaMallocManaged");
  std::memset(managed, 0x5A, size);  // populated, resident on the host
  auto prefetch = [&](bool to_device) {
#if CUDART_VERSION >= 13000
    cudaMemLocation where;
    where.type =
        to_device ? cudaMemLocationTypeDevice : cudaMemLocationTypeHost;
    where.id = to_device ? ordinal : 0;
    Check(cudaMemPrefetchAsync(managed, size, where, 0, stream),
          "cudaMemPrefetchAsync");
#else
    Check(cudaMemPrefetchAsync(managed, size,
                               to_device ? ordinal : cudaCpuDeviceId, stream),
          "cudaMemPrefetchAsync");
#endif
    Check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  };
  const double h2d = Measure([&] { prefetch(false); }, [&] { prefetch(true); });
  const double d2h = Measure([&] { prefetch(true); }, [&] { prefetch(false); });
  Check(cudaFree(managed), "cudaFree(managed)");
  AddRows(rows, "managed_prefetch", size, h2d, d2h);
}

void MigrateRows(MemoryManager& mm, uint64_t size, std::vector<Row>* rows) {
  Principal me;
  me.name = "bench";
  MemoryManager::CreateRequest req;
  req.size = size;
  req.placements = {"smem", "lmem"};
  absl::StatusOr<MemoryManager::CreateResult> obj = mm.CreateObject(me, req);
  if (!obj.ok()) Fail(obj.status().ToString());
  std::vector<uint8_t> data(size, 0x5A);
  absl::Status w =
      mm.Write(me, obj->object_id, 0, data, absl::InfiniteFuture());
  if (!w.ok()) Fail(w.ToString());
  std::string at = "smem";
  auto migrate = [&](const std::string& to) {
    absl::StatusOr<uint64_t> f = mm.Migrate(me, obj->object_id, to);
    if (!f.ok()) Fail(f.status().ToString());
    absl::StatusOr<FenceInfo> info =
        mm.WaitFence(me, *f, absl::InfiniteFuture());
    if (!info.ok()) Fail(info.status().ToString());
    if (!info->error.ok()) Fail(info->error.ToString());
    at = to;
  };
  auto be_at = [&](const std::string& where) {
    if (at != where) migrate(where);
  };
  const double h2d = Measure([&] { be_at("smem"); }, [&] { migrate("lmem"); });
  const double d2h = Measure([&] { be_at("lmem"); }, [&] { migrate("smem"); });
  // The content survived the round trips.
  std::vector<uint8_t> out(size);
  absl::Status r = mm.Read(me, obj->object_id, 0, absl::MakeSpan(out),
                           absl::InfiniteFuture());
  if (!r.ok()) Fail(r.ToString());
  if (out != data) Fail("content changed during the benchmark");
  if (absl::Status s = mm.DestroyObject(me, obj->object_id); !s.ok()) {
    Fail(s.ToString());
  }
  AddRows(rows, "migrate", size, h2d, d2h);
}

int Run() {
  absl::StatusOr<int> gpus = CudaDevice::Probe();
  if (!gpus.ok()) Skip(gpus.status().message());
  const int ordinal = absl::GetFlag(FLAGS_device);
  std::vector<uint64_t> sizes;
  for (uint64_t s : {4096ull, 1ull << 20, 64ull << 20, 1ull << 30}) {
    if (s <= absl::GetFlag(FLAGS_max_size)) sizes.push_back(s);
  }
  if (sizes.empty()) Fail("--max_size is below 4096");
  const uint64_t region = std::max<uint64_t>(2 * sizes.back(), 64ull << 20);

  auto faults = std::make_unique<FaultInjector>();
  CudaDeviceConfig config;
  config.device_ordinal = ordinal;
  config.lmem_bytes = region;
  config.smem_bytes = region;
  absl::StatusOr<std::unique_ptr<CudaDevice>> device =
      CudaDevice::Create(config, faults.get());
  if (!device.ok()) {
    if (absl::IsUnavailable(device.status())) Skip(device.status().message());
    Fail(device.status().ToString());
  }
  CudaDevice* cuda = device->get();
  std::fprintf(stderr, "%s\n", cuda->description().c_str());
  absl::StatusOr<std::unique_ptr<MemoryManager>> mm =
      MemoryManager::Create(std::move(faults), *std::move(device));
  if (!mm.ok()) Fail(mm.status().ToString());

  Check(cudaSetDevice(ordinal), "cudaSetDevice");
  cudaStream_t stream = nullptr;
  Check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
        "cudaStreamCreateWithFlags");

  std::vector<Row> rows;
  for (uint64_t size : sizes) {
    RawRows(*cuda, stream, size, &rows);
    PrefetchRows(ordinal, stream, size, &rows);
    MigrateRows(**mm, size, &rows);
  }
  Check(cudaStreamDestroy(stream), "cudaStreamDestroy");

  auto find = [&](const std::string& c, const std::string& dir,
                  uint64_t size) -> const Row* {
    for (const Row& r : rows) {
      if (r.c == c && r.direction == dir && r.size == size) return &r;
    }
    return nullptr;
  };
  std::printf("[\n");
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const Row* raw = find("raw_memcpy_async", r.direction, r.size);
    std::printf(
        "  {\"case\": \"%s\", \"direction\": \"%s\", \"size_bytes\": %llu, "
        "\"ops_per_s\": %.1f, \"gbps\": %.3f, \"ratio_to_raw\": %.3f}%s\n",
        r.c.c_str(), r.direction.c_str(),
        static_cast<unsigned long long>(r.size), r.ops_per_s, r.gbps,
        raw != nullptr && raw->gbps > 0 ? r.gbps / raw->gbps : 0.0,
        i + 1 < rows.size() ? "," : "");
  }
  std::printf("]\n");

  // The goals, for a person reading the run.
  for (uint64_t size : sizes) {
    for (const char* dir : {"h2d", "d2h"}) {
      const Row* m = find("migrate", dir, size);
      const Row* raw = find("raw_memcpy_async", dir, size);
      const Row* pf = find("managed_prefetch", dir, size);
      const double ratio = m->gbps / raw->gbps;
      const bool big = size >= (64ull << 20);
      std::fprintf(
          stderr,
          "%-4s %10llu B: migrate %.2f GB/s = %.3f x raw%s; %s "
          "prefetch (%.2f GB/s)\n",
          dir, static_cast<unsigned long long>(size), m->gbps, ratio,
          big ? (ratio >= 0.9 ? " (goal >= 0.9 met)" : " (goal >= 0.9 MISSED)")
              : "",
          m->gbps > pf->gbps ? "faster than" : "NOT faster than", pf->gbps);
    }
  }
  return 0;
}

#else  // !GPUMIG_HAVE_CUDA

int Run() { Skip(CudaDevice::Probe().status().message()); }

#endif  // GPUMIG_HAVE_CUDA

}  // namespace
}  // namespace gpumig

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return gpumig::Run();
}
