// The two exposure scenarios -- (a) a failed eviction blit must not expose
// the old owner's data to the next owner of the blocks, (b) a failed blit
// into a new placement must not expose stale data -- the stale-data test, and a
// seeded concurrency test -- all through the MemoryManager on a SimDevice.
#include <atomic>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/device/sim_device.h"
#include "core/manager/memory_manager.h"
#include "core/manager/test_util.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

using testing::Pattern;
using testing::Soon;
using testing::User;

struct Rig {
  FaultInjector* faults = nullptr;
  std::unique_ptr<MemoryManager> mm;
};

Rig MakeRig(uint64_t lmem, uint64_t aperture, uint64_t smem,
            bool independent_fallback_path = false) {
  Rig rig;
  auto faults = std::make_unique<FaultInjector>();
  rig.faults = faults.get();
  SimDeviceConfig config;
  config.regions.push_back({"lmem", RegionKind::kLmem, lmem, aperture});
  config.regions.push_back({"smem", RegionKind::kSmem, smem, smem});
  config.independent_fallback_path = independent_fallback_path;
  auto device = SimDevice::Create(std::move(config), rig.faults);
  EXPECT_TRUE(device.ok()) << device.status();
  auto mm = MemoryManager::Create(std::move(faults), *std::move(device));
  EXPECT_TRUE(mm.ok()) << mm.status();
  rig.mm = *std::move(mm);
  return rig;
}

uint64_t SeedFromEnv() {
  if (const char* s = std::getenv("GPUMIG_SEED"))
    return std::strtoull(s, 0, 10);
  return std::random_device{}();
}

bool Contains(const std::vector<uint8_t>& data, uint8_t marker) {
  for (uint8_t b : data) {
    if (b == marker) return true;
  }
  return false;
}

// Scenario (a): an eviction blit fails with no fallback while the next
// owner's clear of the same (pipelined, already freed) blocks is queued
// behind it. The clear is skipped with the eviction's error; its failsafe
// must memset, or the new owner reads the old owner's bytes.
TEST(FailsafeScenarioTest, FailedEvictionSkipsNextClearAndNewOwnerReadsZeros) {
  Rig rig = MakeRig(1 << 20, 1 << 20, 4 << 20);
  MemoryManager& mm = *rig.mm;
  const Principal a = User(1000), b = User(2000);
  MemoryManager::CreateRequest req;
  req.size = 1 << 20;
  req.placements = {"lmem", "smem"};
  auto x = mm.CreateObject(a, req);
  ASSERT_TRUE(x.ok()) << x.status();
  ASSERT_TRUE(
      mm.Write(a, x->object_id, 0, std::vector<uint8_t>(1 << 20, 0xA5), Soon())
          .ok());

  // The eviction blit is slow (so B's clear queues behind it), fails, and
  // may not fall back.
  FaultSpec latency;
  latency.kind = FaultKind::kEngineLatency;
  latency.latency = absl::Milliseconds(100);
  latency.trigger = FaultTrigger::kNextN;
  latency.next_n = 1;
  ASSERT_TRUE(rig.faults->Add(latency).ok());
  FaultSpec fail;
  fail.kind = FaultKind::kFailBlit;
  fail.op = "evict";
  ASSERT_TRUE(rig.faults->Add(fail).ok());
  FaultSpec ban;
  ban.kind = FaultKind::kBanMemcpy;
  ban.op = "evict";
  ASSERT_TRUE(rig.faults->Add(ban).ok());

  MemoryManager::CreateRequest req_b;
  req_b.size = 1 << 20;
  req_b.placements = {"lmem"};
  auto y = mm.CreateObject(b, req_b);
  ASSERT_TRUE(y.ok()) << y.status();

  std::vector<uint8_t> out(1 << 20, 0x11);
  ASSERT_TRUE(mm.Read(b, y->object_id, 0, absl::MakeSpan(out), Soon()).ok());
  EXPECT_FALSE(Contains(out, 0xA5)) << "new owner read the old owner's bytes";
  EXPECT_EQ(out, std::vector<uint8_t>(1 << 20, 0));
  auto fy = mm.GetFence(b, y->fence_id);
  ASSERT_TRUE(fy.ok());
  EXPECT_TRUE(fy->error.ok()) << fy->error;
  EXPECT_EQ(fy->outcome, MoveOutcome::kFallbackClear)
      << "the clear was not skipped: the scenario did not happen";
  // The evicted object lost its content and says so.
  std::vector<uint8_t> xa(16);
  EXPECT_EQ(mm.Read(a, x->object_id, 0, absl::MakeSpan(xa), Soon()).code(),
            absl::StatusCode::kDataLoss);
  auto lmem = mm.GetRegion("lmem");
  EXPECT_EQ(lmem->evictions, 1u);
  EXPECT_EQ(lmem->fallback_clears, 1u);
}

// Scenario (b): the engine is wedged while blits are queued. Readers that
// arrive meanwhile see nothing before the failsafe decided: exact content
// (CPU fallback) or DATA_LOSS (unknown state), never the intermediate bytes.
TEST(FailsafeScenarioTest, WedgedEngineWithQueuedBlitsExposesNothing) {
  Rig rig = MakeRig(8 << 20, 2 << 20, 16 << 20);
  MemoryManager& mm = *rig.mm;
  const Principal a = User(1000);
  constexpr int kObjects = 8;
  constexpr uint64_t kSize = 512 << 10;
  std::vector<uint64_t> ids;
  for (int i = 0; i < kObjects; ++i) {
    MemoryManager::CreateRequest req;
    req.size = kSize;
    req.placements = {"smem", "lmem"};
    auto r = mm.CreateObject(a, req);
    ASSERT_TRUE(r.ok()) << r.status();
    ids.push_back(r->object_id);
    ASSERT_TRUE(mm.Write(a, r->object_id, 0, Pattern(kSize, i), Soon()).ok());
  }
  FaultSpec latency;
  latency.kind = FaultKind::kEngineLatency;
  latency.latency = absl::Milliseconds(20);
  auto latency_id = rig.faults->Add(latency);
  ASSERT_TRUE(latency_id.ok());
  // Queue a migration of each to LMEM (half inside the aperture by luck of
  // placement order, half outside once the aperture is full).
  for (uint64_t id : ids) ASSERT_TRUE(mm.Migrate(a, id, "lmem").ok());
  FaultSpec wedge;
  wedge.kind = FaultKind::kWedgeEngine;
  auto wedge_id = rig.faults->Add(wedge);
  ASSERT_TRUE(wedge_id.ok());

  std::vector<std::thread> readers;
  std::atomic<int> exact{0}, refused{0}, wrong{0};
  for (int i = 0; i < kObjects; ++i) {
    readers.emplace_back([&, i] {
      std::vector<uint8_t> out(kSize, 0x5A);
      absl::Status s = mm.Read(a, ids[i], 0, absl::MakeSpan(out), Soon());
      if (s.ok() && out == Pattern(kSize, i)) {
        ++exact;
      } else if (absl::IsDataLoss(s)) {
        ++refused;
      } else {
        ++wrong;
        ADD_FAILURE() << "object " << i << ": " << s;
      }
    });
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(exact.load() + refused.load(), kObjects);
  ASSERT_TRUE(rig.faults->Remove(*wedge_id).ok());
  ASSERT_TRUE(rig.faults->Remove(*latency_id).ok());
  auto lmem = mm.GetRegion("lmem");
  EXPECT_GE(lmem->blit_failures, 1u) << "the wedge came too late to matter";
  EXPECT_EQ(lmem->fallback_copies + lmem->unknown_state_marks,
            lmem->blit_failures);
}

// LMEM the CPU cannot reach at all (aperture 0, as on the CUDA backend):
// with the device's independent path, a failed blit is still rescued --
// FALLBACK_DEVICE_* -- and only a banned fallback leaves it unknown.
TEST(FailsafeScenarioTest, DeviceFallbackPathRescuesMemoryTheCpuCannotReach) {
  for (const bool ban : {false, true}) {
    SCOPED_TRACE(ban ? "memcpy banned" : "fallback allowed");
    Rig rig = MakeRig(4 << 20, 0, 4 << 20, /*independent_fallback_path=*/true);
    MemoryManager& mm = *rig.mm;
    const Principal a = User(1000);
    FaultSpec clear{FaultKind::kFailClear};
    auto clear_id = rig.faults->Add(clear);
    MemoryManager::CreateRequest req;
    req.size = 1 << 20;
    req.placements = {"smem", "lmem"};
    auto obj = mm.CreateObject(a, req);
    ASSERT_TRUE(obj.ok()) << obj.status();
    ASSERT_TRUE(rig.faults->Remove(*clear_id).ok());
    const auto data = Pattern(1 << 20, 9);
    ASSERT_TRUE(mm.Write(a, obj->object_id, 0, data, Soon()).ok());
    FaultSpec fail{FaultKind::kFailBlit};
    ASSERT_TRUE(rig.faults->Add(fail).ok());
    if (ban) {
      ASSERT_TRUE(rig.faults->Add({FaultKind::kBanMemcpy}).ok());
    }
    auto f = mm.Migrate(a, obj->object_id, "lmem");
    ASSERT_TRUE(f.ok()) << f.status();
    auto fence = mm.WaitFence(a, *f, Soon());
    ASSERT_TRUE(fence.ok());
    std::vector<uint8_t> out(1 << 20);
    absl::Status read =
        mm.Read(a, obj->object_id, 0, absl::MakeSpan(out), Soon());
    if (ban) {
      EXPECT_EQ(fence->outcome, MoveOutcome::kUnknownState);
      EXPECT_EQ(fence->error.code(), absl::StatusCode::kDataLoss);
      EXPECT_EQ(read.code(), absl::StatusCode::kDataLoss);
    } else {
      EXPECT_EQ(fence->outcome, MoveOutcome::kFallbackDeviceCopy);
      EXPECT_TRUE(fence->error.ok()) << fence->error;
      ASSERT_TRUE(read.ok()) << read;  // Through the engine: LMEM is dark.
      EXPECT_EQ(out, data);
      EXPECT_EQ(mm.GetRegion("lmem")->fallback_copies, 1u);
    }
  }
}

// A migration fails with no fallback while a second one is queued behind it:
// both fences end UNKNOWN_STATE with an error, but the object names the
// first -- the cause -- as its unknown_fence_id, and the second as its move
// fence.
TEST(FailsafeScenarioTest, UnknownStateNamesTheMoveThatCausedIt) {
  Rig rig = MakeRig(4 << 20, 0, 4 << 20);
  MemoryManager& mm = *rig.mm;
  const Principal a = User(1000);
  MemoryManager::CreateRequest req;
  req.size = 256 << 10;
  req.placements = {"smem", "lmem"};
  auto obj = mm.CreateObject(a, req);
  ASSERT_TRUE(obj.ok()) << obj.status();
  ASSERT_TRUE(mm.WaitFence(a, obj->fence_id, Soon()).ok());
  ASSERT_TRUE(
      mm.Write(a, obj->object_id, 0, Pattern(256 << 10, 3), Soon()).ok());

  // The first blit is slow (so the second migration is queued while the
  // object still looks fine), fails, and may not fall back.
  FaultSpec latency{FaultKind::kEngineLatency};
  latency.latency = absl::Milliseconds(100);
  latency.trigger = FaultTrigger::kNextN;
  latency.next_n = 1;
  ASSERT_TRUE(rig.faults->Add(latency).ok());
  FaultSpec fail{FaultKind::kFailBlit};
  fail.trigger = FaultTrigger::kNextN;
  fail.next_n = 1;
  ASSERT_TRUE(rig.faults->Add(fail).ok());
  ASSERT_TRUE(rig.faults->Add({FaultKind::kBanMemcpy}).ok());

  auto first = mm.Migrate(a, obj->object_id, "lmem");
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = mm.Migrate(a, obj->object_id, "smem");
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_NE(*first, *second);

  for (uint64_t id : {*first, *second}) {
    auto f = mm.WaitFence(a, id, Soon());
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ(f->outcome, MoveOutcome::kUnknownState) << "fence " << id;
    EXPECT_EQ(f->error.code(), absl::StatusCode::kDataLoss) << "fence " << id;
  }
  auto info = mm.GetObject(a, obj->object_id);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state, ObjectState::kUnknown);
  EXPECT_EQ(info->unknown_fence_id, *first);
  EXPECT_EQ(info->move_fence_id, *second);
  EXPECT_NE(info->unknown_reason.find("failed"), std::string::npos)
      << info->unknown_reason;
  // Counted once, though two fences ended unknown.
  EXPECT_EQ(mm.GetRegion("lmem")->unknown_state_marks, 1u);
}

// Owner A fills all of LMEM and SMEM with a marker and destroys everything;
// owner B allocates with every fault mode on and never reads the marker.
TEST(FailsafeScenarioTest, NewOwnerNeverReadsStaleDataUnderAnyFault) {
  constexpr uint64_t kLmem = 4 << 20, kSmem = 4 << 20, kSize = 256 << 10;
  constexpr uint8_t kMarker = 0xC3;
  for (int mode = 0; mode < 5; ++mode) {
    SCOPED_TRACE(absl::StrCat("fault mode ", mode));
    Rig rig = MakeRig(kLmem, 1 << 20, kSmem);
    MemoryManager& mm = *rig.mm;
    const Principal a = User(1000), b = User(2000);
    std::vector<uint64_t> mine;
    for (const char* region : {"lmem", "smem"}) {
      for (uint64_t n = 0; n < 4 << 20; n += kSize) {
        MemoryManager::CreateRequest req;
        req.size = kSize;
        req.placements = {region};
        auto r = mm.CreateObject(a, req);
        ASSERT_TRUE(r.ok()) << r.status();
        ASSERT_TRUE(mm.Write(a, r->object_id, 0,
                             std::vector<uint8_t>(kSize, kMarker), Soon())
                        .ok());
        mine.push_back(r->object_id);
      }
    }
    for (uint64_t id : mine) ASSERT_TRUE(mm.DestroyObject(a, id).ok());

    std::vector<FaultSpec> specs(1);
    specs[0].kind = FaultKind::kFailClear;
    if (mode >= 1) specs.push_back({FaultKind::kBanMemcpy});
    if (mode >= 2) specs.push_back({FaultKind::kFailWorkAllocation});
    if (mode == 3) specs = {{FaultKind::kWedgeEngine}};
    if (mode == 4) specs = {{FaultKind::kFailClear}, {FaultKind::kWedgeEngine}};
    for (const FaultSpec& s : specs) ASSERT_TRUE(rig.faults->Add(s).ok());

    int readable = 0;
    for (const char* region : {"lmem", "smem"}) {
      for (uint64_t n = 0; n < 4 << 20; n += kSize) {
        MemoryManager::CreateRequest req;
        req.size = kSize;
        req.placements = {region};
        auto r = mm.CreateObject(b, req);
        if (!r.ok()) {
          // Only a synchronous failure may refuse creation.
          EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted);
          continue;
        }
        std::vector<uint8_t> out(kSize);
        absl::Status s =
            mm.Read(b, r->object_id, 0, absl::MakeSpan(out), Soon());
        if (s.ok()) {
          ++readable;
          ASSERT_FALSE(Contains(out, kMarker))
              << "B read A's bytes in " << region;
        } else {
          EXPECT_TRUE(absl::IsDataLoss(s) || absl::IsInternal(s)) << s;
        }
      }
    }
    if (mode == 0) {
      EXPECT_GT(readable, 0);
    }
  }
}

// Threads create / write / migrate / exec / read / destroy their own objects
// with random faults. Reads return the owner's last write, zeros, or a
// refusal; never another owner's bytes. At the end, with everything
// destroyed, every region's accounting is back to zero.
TEST(FailsafeScenarioTest, ConcurrentClientsWithRandomFaultsKeepInvariants) {
  const uint64_t seed = SeedFromEnv();
  std::printf("seed=%llu (set GPUMIG_SEED to replay)\n",
              static_cast<unsigned long long>(seed));
  Rig rig = MakeRig(4 << 20, 1 << 20, 8 << 20);
  MemoryManager& mm = *rig.mm;
  FaultSpec blit{FaultKind::kFailBlit, FaultTrigger::kProbability};
  blit.probability = 0.1;
  blit.seed = seed;
  FaultSpec clear{FaultKind::kFailClear, FaultTrigger::kProbability};
  clear.probability = 0.1;
  clear.seed = seed + 1;
  FaultSpec ban{FaultKind::kBanMemcpy, FaultTrigger::kProbability};
  ban.probability = 0.2;
  ban.seed = seed + 2;
  FaultSpec alloc{FaultKind::kFailWorkAllocation, FaultTrigger::kProbability};
  alloc.probability = 0.05;
  alloc.seed = seed + 3;
  for (const FaultSpec& s : {blit, clear, ban, alloc}) {
    ASSERT_TRUE(rig.faults->Add(s).ok());
  }

  constexpr int kThreads = 4, kOps = 300;
  std::vector<std::thread> threads;
  std::atomic<int> violations{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const Principal me = User(1000 + t);
      std::mt19937_64 rng(seed * 31 + t);
      struct Obj {
        uint64_t id;
        uint64_t size;
        uint32_t tag;  // 0 = never written (zeros)
      };
      std::vector<Obj> objs;
      uint32_t next_tag = 1;
      for (int op = 0; op < kOps; ++op) {
        const int what = rng() % 6;
        if (objs.empty() || what == 0) {
          MemoryManager::CreateRequest req;
          req.size = (1 + rng() % 64) * 4096;
          req.placements = rng() % 2 ? std::vector<std::string>{"lmem", "smem"}
                                     : std::vector<std::string>{"smem", "lmem"};
          req.require_cpu_access = rng() % 2;
          auto r = mm.CreateObject(me, req);
          if (r.ok()) objs.push_back({r->object_id, req.size, 0});
          continue;
        }
        Obj& o = objs[rng() % objs.size()];
        if (what == 1) {
          const uint32_t tag = (t << 24) | next_tag++;
          if (mm.Write(me, o.id, 0, Pattern(o.size, tag), Soon()).ok()) {
            o.tag = tag;
          }
        } else if (what == 2) {
          (void)mm.Migrate(me, o.id, rng() % 2 ? "lmem" : "smem");
        } else if (what == 3) {
          std::vector<uint8_t> out(o.size);
          absl::Status s = mm.Read(me, o.id, 0, absl::MakeSpan(out), Soon());
          if (s.ok()) {
            const auto want = o.tag == 0 ? std::vector<uint8_t>(o.size, 0)
                                         : Pattern(o.size, o.tag);
            if (out != want) ++violations;
          } else if (!absl::IsDataLoss(s)) {
            ++violations;
          }
        } else if (what == 4) {
          auto c = mm.ExecChecksum(me, o.id, 0, o.size, Soon());
          (void)c;
        } else {
          EXPECT_TRUE(mm.DestroyObject(me, o.id).ok());
          o = objs.back();
          objs.pop_back();
        }
      }
      for (const Obj& o : objs) EXPECT_TRUE(mm.DestroyObject(me, o.id).ok());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(violations.load(), 0) << "seed=" << seed;
  // Everything destroyed: wait for in-flight works, then accounting is zero.
  EXPECT_TRUE(mm.Shutdown(Soon()));
  for (const RegionInfo& r : mm.ListRegions()) {
    EXPECT_EQ(r.usage.allocated_bytes, 0u) << r.name << " seed=" << seed;
    EXPECT_EQ(r.usage.tables, 0u) << r.name;
  }
  EXPECT_TRUE(mm.CheckInvariantsForTest().ok());
}

}  // namespace
}  // namespace gpumig
