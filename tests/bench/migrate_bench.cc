// Migration throughput through MemoryManager on the sim device, against
// plain memcpy of the same bytes in the same run (the physical limit here).
//
//   bazel run -c opt //tests/bench:migrate_bench [-- --seconds=0.5]
//
// Prints one JSON array; a row per measurement:
//   {"case": "migrate"|"fallback"|"memcpy", "direction": "smem_to_lmem"|
//    "lmem_to_smem", "size_bytes": N, "ops_per_s": X, "gbps": Y,
//    "ratio_to_memcpy": R}
// "fallback" makes every blit fail (the engine clears the destination, the
// failsafe copies by CPU): the cost of the failsafe path.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/device/sim_device.h"
#include "core/manager/memory_manager.h"

ABSL_FLAG(double, seconds, 0.5, "minimum measuring time per row");

namespace gpumig {
namespace {

constexpr uint64_t kRegion = 512ull << 20;

struct Row {
  std::string c, direction;
  uint64_t size;
  double ops_per_s, gbps;
};

std::unique_ptr<MemoryManager> MakeManager(FaultInjector** faults_out) {
  auto faults = std::make_unique<FaultInjector>();
  *faults_out = faults.get();
  SimDeviceConfig config;
  config.regions.push_back({"lmem", RegionKind::kLmem, kRegion, kRegion});
  config.regions.push_back({"smem", RegionKind::kSmem, kRegion, kRegion});
  auto device = SimDevice::Create(std::move(config), *faults_out);
  if (!device.ok()) {
    std::fprintf(stderr, "%s\n", device.status().ToString().c_str());
    std::exit(1);
  }
  auto mm = MemoryManager::Create(std::move(faults), *std::move(device));
  if (!mm.ok()) std::exit(1);
  return *std::move(mm);
}

// Times `op` repeatedly for at least --seconds; returns ops per second.
template <typename Op>
double Measure(Op op) {
  op();  // Warm up: fault in pages, fill caches.
  const absl::Duration min = absl::Seconds(absl::GetFlag(FLAGS_seconds));
  int n = 0;
  const absl::Time start = absl::Now();
  absl::Duration elapsed;
  do {
    op();
    ++n;
    elapsed = absl::Now() - start;
  } while (elapsed < min || n < 3);
  return n / absl::ToDoubleSeconds(elapsed);
}

void Run(std::vector<Row>* rows) {
  Principal me;
  me.name = "bench";
  for (uint64_t size : {4096ull, 1ull << 20, 64ull << 20}) {
    // memcpy: the same bytes, host to host.
    std::vector<uint8_t> a(size, 1), b(size, 2);
    const double memcpy_ops = Measure([&] {
      std::memcpy(b.data(), a.data(), size);
      asm volatile("" : : "r"(b.data()) : "memory");
    });
    for (const char* dir : {"smem_to_lmem", "lmem_to_smem"}) {
      rows->push_back(
          {"memcpy", dir, size, memcpy_ops, memcpy_ops * size / 1e9});
    }
    for (const bool fallback : {false, true}) {
      FaultInjector* faults = nullptr;
      auto mm = MakeManager(&faults);
      if (fallback) {
        FaultSpec fail;
        fail.kind = FaultKind::kFailBlit;
        (void)faults->Add(fail);
      }
      MemoryManager::CreateRequest req;
      req.size = size;
      req.placements = {"smem", "lmem"};
      auto obj = mm->CreateObject(me, req);
      if (!obj.ok()) std::exit(1);
      std::vector<uint8_t> data(size, 0x5A);
      (void)mm->Write(me, obj->object_id, 0, data, absl::InfiniteFuture());
      const char* at = "smem";
      auto migrate = [&](const char* to) {
        auto f = mm->Migrate(me, obj->object_id, to);
        if (!f.ok()) std::exit(1);
        (void)mm->WaitFence(me, *f, absl::InfiniteFuture());
        at = to;
      };
      // Time each direction separately: each op is one migration and its
      // wait; the return trip is not timed.
      for (const char* dir : {"smem_to_lmem", "lmem_to_smem"}) {
        const bool to_lmem = std::string(dir) == "smem_to_lmem";
        const char* from = to_lmem ? "smem" : "lmem";
        const char* to = to_lmem ? "lmem" : "smem";
        double total = 0;
        int n = 0;
        const absl::Time deadline =
            absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_seconds));
        do {
          if (std::string(at) != from) migrate(from);
          const absl::Time t0 = absl::Now();
          migrate(to);
          total += absl::ToDoubleSeconds(absl::Now() - t0);
          ++n;
        } while (absl::Now() < deadline || n < 4);
        const double ops = n / total;
        rows->push_back({fallback ? "fallback" : "migrate", dir, size, ops,
                         ops * size / 1e9});
      }
      (void)mm->DestroyObject(me, obj->object_id);
    }
  }
}

}  // namespace
}  // namespace gpumig

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil runs absl::Mutex's deadlock detector (no NDEBUG); the
  // daemon turns it off in opt builds, so does this.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<gpumig::Row> rows;
  gpumig::Run(&rows);
  std::printf("[\n");
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    double memcpy_gbps = 0;
    for (const auto& m : rows) {
      if (m.c == "memcpy" && m.size == r.size) memcpy_gbps = m.gbps;
    }
    std::printf(
        "  {\"case\": \"%s\", \"direction\": \"%s\", \"size_bytes\": %llu, "
        "\"ops_per_s\": %.1f, \"gbps\": %.3f, \"ratio_to_memcpy\": %.3f}%s\n",
        r.c.c_str(), r.direction.c_str(),
        static_cast<unsigned long long>(r.size), r.ops_per_s, r.gbps,
        memcpy_gbps > 0 ? r.gbps / memcpy_gbps : 0.0,
        i + 1 < rows.size() ? "," : "");
  }
  std::printf("]\n");
  return 0;
}
