// The failsafe matrix (reduced), exposure scenario (a) (a failed eviction
// blit must not leak the old owner's data to the next owner) and the
// stale-data test, through a MemoryManager on a CudaDevice. Skips without a
// GPU.
//
// On this backend LMEM has no CPU aperture, so every LMEM move is the
// "outside the aperture" column of core/manager/failsafe_matrix_test.cc, and
// there is one LMEM region (no LMEM-to-LMEM route). The invariant is the
// same: after a series of moves under a fault mode, either
//   (1) the content is exactly what the owner wrote (zeros after create) and
//       the last fence has no error, or
//   (2) the object is unknown-state, every access is refused with DATA_LOSS,
//       and the fence that made it so carries the error.
//
// A failed blit can end in (1) only through the device's independent path
// (Device::FallbackCopy/FallbackFill) -- the CPU cannot reach LMEM here --
// so the outcome must be kFallbackDeviceCopy/kFallbackDeviceClear and the
// device's fallback counters must have moved: the injected failure clears
// the destination, so only a real fallback passes the content check. With
// memcpy banned, the Migrator bans that path too: outcome (2), or ABORTED
// and nothing changed when the failsafe work could not be set up.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/device/checksum.h"
#include "core/device/cuda/cuda_device.h"
#include "core/manager/memory_manager.h"
#include "core/migrate/migrator.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

constexpr uint64_t kObj = 256 << 10;

Principal User(uint32_t uid) {
  Principal p;
  p.uid = uid;
  p.name = "uid:" + std::to_string(uid);
  p.admin = uid == 0;
  return p;
}

absl::Time Soon() { return absl::Now() + absl::Seconds(30); }

std::vector<uint8_t> Pattern(uint64_t size, uint32_t tag) {
  std::vector<uint8_t> v(size);
  uint32_t x = tag * 2654435761u + 1;
  for (uint64_t i = 0; i < size; ++i) {
    x = x * 1103515245u + 12345u;
    v[i] = static_cast<uint8_t>((x >> 16) | 1);
  }
  return v;
}

bool Contains(const std::vector<uint8_t>& data, uint8_t marker) {
  for (uint8_t b : data) {
    if (b == marker) return true;
  }
  return false;
}

struct Rig {
  FaultInjector* faults = nullptr;
  CudaDevice* device = nullptr;  // owned by mm
  std::unique_ptr<MemoryManager> mm;
};

// Empty `mm` (and a skip message in *skip) when there is no GPU.
Rig MakeRig(uint64_t lmem, uint64_t smem, std::string* skip) {
  Rig rig;
  absl::StatusOr<int> gpus = CudaDevice::Probe();
  if (!gpus.ok()) {
    *skip = std::string(gpus.status().message());
    return rig;
  }
  auto faults = std::make_unique<FaultInjector>();
  rig.faults = faults.get();
  CudaDeviceConfig config;
  config.lmem_bytes = lmem;
  config.smem_bytes = smem;
  auto device = CudaDevice::Create(config, rig.faults);
  EXPECT_TRUE(device.ok()) << device.status();
  if (!device.ok()) return rig;
  rig.device = device->get();
  auto mm = MemoryManager::Create(std::move(faults), *std::move(device));
  EXPECT_TRUE(mm.ok()) << mm.status();
  if (mm.ok()) rig.mm = *std::move(mm);
  return rig;
}

uint64_t FallbackWrites(const CudaDevice& device) {
  const CudaFallbackCounters c = device.fallback_counters();
  return c.copies + c.fills;
}

enum class Move { kCreate, kLmemToSmem, kSmemToLmem, kEvict };
enum class Fault { kNone, kBlit, kBlitBan, kBlitAlloc, kBlitAllocBan };

std::string MoveName(Move m) {
  switch (m) {
    case Move::kCreate:
      return "Create";
    case Move::kLmemToSmem:
      return "LmemToSmem";
    case Move::kSmemToLmem:
      return "SmemToLmem";
    case Move::kEvict:
      return "Evict";
  }
  return "";
}
std::string FaultName(Fault f) {
  switch (f) {
    case Fault::kNone:
      return "NoFault";
    case Fault::kBlit:
      return "BlitFails";
    case Fault::kBlitBan:
      return "BlitFailsMemcpyBanned";
    case Fault::kBlitAlloc:
      return "WorkAllocFails";
    case Fault::kBlitAllocBan:
      return "WorkAllocFailsMemcpyBanned";
  }
  return "";
}

using Param = std::tuple<Move, Fault>;

class CudaFailsafeMatrixTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    std::string skip;
    rig_ = MakeRig(8 << 20, 16 << 20, &skip);
    if (!skip.empty()) GTEST_SKIP() << skip;
    ASSERT_NE(rig_.mm, nullptr);
  }

  Move move() const { return std::get<0>(GetParam()); }
  Fault fault() const { return std::get<1>(GetParam()); }
  bool ban() const {
    return fault() == Fault::kBlitBan || fault() == Fault::kBlitAllocBan;
  }
  bool sync() const {
    return fault() == Fault::kBlitAlloc || fault() == Fault::kBlitAllocBan;
  }

  void ArmFaults(absl::string_view op) {
    if (fault() == Fault::kNone) return;
    FaultSpec blit;
    blit.kind = op == "clear" ? FaultKind::kFailClear : FaultKind::kFailBlit;
    blit.op = std::string(op);
    ASSERT_TRUE(rig_.faults->Add(blit).ok());
    if (ban()) {
      FaultSpec b;
      b.kind = FaultKind::kBanMemcpy;
      ASSERT_TRUE(rig_.faults->Add(b).ok());
    }
    if (sync()) {
      FaultSpec alloc;
      alloc.kind = FaultKind::kFailWorkAllocation;
      ASSERT_TRUE(rig_.faults->Add(alloc).ok());
    }
  }

  uint64_t Create(std::vector<std::string> placements, uint64_t* fence) {
    MemoryManager::CreateRequest req;
    req.size = kObj;
    req.placements = std::move(placements);
    auto r = rig_.mm->CreateObject(User(1000), req);
    if (!r.ok()) {
      create_status_ = r.status();
      return 0;
    }
    *fence = r->fence_id;
    return r->object_id;
  }

  // Outcome (1) or (2); returns whether the object is unknown-state.
  bool CheckOneOfTwo(uint64_t id, uint64_t fence_id,
                     const std::vector<uint8_t>& expected) {
    MemoryManager& mm = *rig_.mm;
    auto fence = mm.WaitFence(User(1000), fence_id, Soon());
    EXPECT_TRUE(fence.ok()) << fence.status();
    auto info = mm.GetObject(User(1000), id);
    EXPECT_TRUE(info.ok()) << info.status();
    if (!fence.ok() || !info.ok()) return false;
    std::vector<uint8_t> out(kObj, 0xEE);
    absl::Status read = mm.Read(User(1000), id, 0, absl::MakeSpan(out), Soon());
    if (info->state == ObjectState::kOk) {
      EXPECT_TRUE(read.ok()) << read;
      EXPECT_TRUE(out == expected) << "content differs from what was written";
      EXPECT_TRUE(fence->error.ok()) << fence->error;
      return false;
    }
    EXPECT_EQ(read.code(), absl::StatusCode::kDataLoss) << read;
    for (uint8_t b : out) {
      if (b != 0xEE) {
        ADD_FAILURE() << "a refused read returned bytes";
        break;
      }
    }
    EXPECT_EQ(mm.Write(User(1000), id, 0, expected, Soon()).code(),
              absl::StatusCode::kDataLoss);
    EXPECT_EQ(mm.ExecFill(User(1000), id, 0, 16, 1).status().code(),
              absl::StatusCode::kDataLoss);
    EXPECT_EQ(mm.Migrate(User(1000), id, "smem").status().code(),
              absl::StatusCode::kDataLoss);
    EXPECT_EQ(fence->error.code(), absl::StatusCode::kDataLoss)
        << "unknown-state object but its last fence has no error";
    EXPECT_EQ(fence->outcome, MoveOutcome::kUnknownState);
    return true;
  }

  Rig rig_;
  absl::Status create_status_;
};

TEST_P(CudaFailsafeMatrixTest, ContentExactOrUnknownNeverAnythingElse) {
  MemoryManager& mm = *rig_.mm;
  CudaDevice& device = *rig_.device;

  if (move() == Move::kCreate) {
    ArmFaults("clear");
    const uint64_t fallbacks_before = device.fallback_counters().fills;
    uint64_t fence = 0;
    const uint64_t id = Create({"lmem"}, &fence);
    if (id == 0) {
      // Only the synchronous path without any fallback may refuse.
      EXPECT_TRUE(sync() && ban()) << create_status_;
      EXPECT_EQ(create_status_.code(), absl::StatusCode::kAborted)
          << create_status_;
      return;
    }
    const bool unknown =
        CheckOneOfTwo(id, fence, std::vector<uint8_t>(kObj, 0));
    auto f = mm.GetFence(User(1000), fence);
    ASSERT_TRUE(f.ok());
    if (fault() == Fault::kNone) {
      EXPECT_FALSE(unknown);
      EXPECT_EQ(f->outcome, MoveOutcome::kBlitOk);
    } else if (ban()) {
      EXPECT_TRUE(unknown) << "memcpy banned, yet the object is readable";
      EXPECT_EQ(f->outcome, MoveOutcome::kUnknownState);
    } else {
      EXPECT_FALSE(unknown);
      EXPECT_EQ(f->outcome, MoveOutcome::kFallbackDeviceClear);
      EXPECT_EQ(device.fallback_counters().fills, fallbacks_before + 1);
      auto lmem = mm.GetRegion("lmem");
      ASSERT_TRUE(lmem.ok());
      EXPECT_EQ(lmem->fallback_device, 1u);
      EXPECT_EQ(lmem->fallback_clears, 1u);
    }
    return;
  }

  std::vector<std::string> placements;
  std::vector<std::string> route;
  switch (move()) {
    case Move::kLmemToSmem:
      placements = {"lmem", "smem"};
      route = {"smem", "lmem", "smem"};
      break;
    case Move::kSmemToLmem:
      placements = {"smem", "lmem"};
      route = {"lmem", "smem", "lmem"};
      break;
    case Move::kEvict:
      placements = {"lmem", "smem"};
      break;
    case Move::kCreate:
      break;
  }
  uint64_t fence = 0;
  const uint64_t id = Create(placements, &fence);
  ASSERT_NE(id, 0u) << create_status_;
  const std::vector<uint8_t> data = Pattern(kObj, 42);
  ASSERT_TRUE(mm.Write(User(1000), id, 0, data, Soon()).ok());
  const uint64_t fallbacks_before = FallbackWrites(device);

  uint64_t last_fence = fence;
  if (move() == Move::kEvict) {
    ArmFaults("evict");
    auto evicted = mm.EvictRegion("lmem");
    ASSERT_TRUE(evicted.ok()) << evicted.status();
    auto info = mm.GetObject(User(1000), id);
    ASSERT_TRUE(info.ok());
    if (evicted->objects_evicted == 0) {
      EXPECT_TRUE(sync() && ban()) << "only a move with no fallback at all "
                                      "may be refused";
      EXPECT_EQ(info->region, "lmem") << "a failed eviction moved the object";
    } else {
      EXPECT_EQ(info->region, "smem");
    }
    last_fence = info->move_fence_id;
  } else {
    ArmFaults("copy");
    std::string at = placements[0];
    for (const std::string& to : route) {
      auto f = mm.Migrate(User(1000), id, to);
      if (f.ok()) {
        last_fence = *f;
        at = to;
        continue;
      }
      ASSERT_TRUE(absl::IsAborted(f.status()) || absl::IsDataLoss(f.status()))
          << f.status();
      if (absl::IsAborted(f.status())) {
        EXPECT_TRUE(sync() && ban()) << f.status();
        auto info = mm.GetObject(User(1000), id);
        EXPECT_EQ(info->region, at) << "ABORTED move changed the placement";
      }
    }
  }
  const bool unknown = CheckOneOfTwo(id, last_fence, data);
  auto f = mm.GetFence(User(1000), last_fence);
  ASSERT_TRUE(f.ok());
  if (fault() == Fault::kNone) {
    EXPECT_FALSE(unknown);
    EXPECT_EQ(f->outcome, MoveOutcome::kBlitOk);
    EXPECT_EQ(FallbackWrites(device), fallbacks_before);
  } else if (ban()) {
    // Async: the first failed move leaves the object unknown (later moves
    // are refused with DATA_LOSS). Sync: every move is refused with ABORTED
    // and the object keeps its content.
    EXPECT_EQ(unknown, !sync());
    EXPECT_EQ(FallbackWrites(device), fallbacks_before);
  } else {
    EXPECT_FALSE(unknown);
    EXPECT_EQ(f->outcome, MoveOutcome::kFallbackDeviceCopy);
    EXPECT_GT(device.fallback_counters().copies, 0u);
    EXPECT_EQ(FallbackWrites(device) - fallbacks_before,
              move() == Move::kEvict ? 1u : 3u)
        << "every failed move went through the device path";
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllMovesAndFaults, CudaFailsafeMatrixTest,
    ::testing::Combine(::testing::Values(Move::kCreate, Move::kLmemToSmem,
                                         Move::kSmemToLmem, Move::kEvict),
                       ::testing::Values(Fault::kNone, Fault::kBlit,
                                         Fault::kBlitBan, Fault::kBlitAlloc,
                                         Fault::kBlitAllocBan)),
    [](const ::testing::TestParamInfo<Param>& info) {
      return absl::StrCat(MoveName(std::get<0>(info.param)), "_",
                          FaultName(std::get<1>(info.param)));
    });

// Scenario (a): an eviction blit fails with no fallback while the next
// owner's clear of the same (pipelined, already freed) blocks is queued
// behind it. The clear is skipped with the eviction's error; its failsafe
// cannot memset LMEM by CPU here, so the device path must clear it -- or
// the new owner reads the old owner's bytes.
TEST(CudaFailsafeScenarioTest,
     FailedEvictionSkipsNextClearAndNewOwnerReadsZeros) {
  std::string skip;
  Rig rig = MakeRig(1 << 20, 4 << 20, &skip);
  if (!skip.empty()) GTEST_SKIP() << skip;
  ASSERT_NE(rig.mm, nullptr);
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
  EXPECT_EQ(fy->outcome, MoveOutcome::kFallbackDeviceClear)
      << "the clear was not skipped: the scenario did not happen";
  // The clear was skipped with its dependency's error: the eviction's
  // failsafe verdict, which names the failed blit.
  EXPECT_TRUE(
      absl::StrContains(fy->engine_error.message(), "injected blit failure"))
      << fy->engine_error;
  EXPECT_EQ(rig.device->fallback_counters().fills, 1u);
  std::vector<uint8_t> xa(16);
  EXPECT_EQ(mm.Read(a, x->object_id, 0, absl::MakeSpan(xa), Soon()).code(),
            absl::StatusCode::kDataLoss);
}

// Owner A fills all of LMEM and SMEM with a marker and destroys everything;
// owner B allocates with every fault mode on and never reads the marker.
TEST(CudaFailsafeScenarioTest, NewOwnerNeverReadsStaleDataUnderAnyFault) {
  constexpr uint64_t kRegion = 4 << 20, kSize = 256 << 10;
  constexpr uint8_t kMarker = 0xC3;
  for (int mode = 0; mode < 5; ++mode) {
    SCOPED_TRACE(absl::StrCat("fault mode ", mode));
    std::string skip;
    Rig rig = MakeRig(kRegion, kRegion, &skip);
    if (!skip.empty()) GTEST_SKIP() << skip;
    ASSERT_NE(rig.mm, nullptr);
    MemoryManager& mm = *rig.mm;
    const Principal a = User(1000), b = User(2000);
    std::vector<uint64_t> mine;
    for (const char* region : {"lmem", "smem"}) {
      for (uint64_t n = 0; n < kRegion; n += kSize) {
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
      for (uint64_t n = 0; n < kRegion; n += kSize) {
        MemoryManager::CreateRequest req;
        req.size = kSize;
        req.placements = {region};
        auto r = mm.CreateObject(b, req);
        if (!r.ok()) {
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
          EXPECT_TRUE(absl::IsDataLoss(s) || absl::IsAborted(s)) << s;
        }
      }
    }
    if (mode == 0) {
      EXPECT_GT(readable, 0);
    }
  }
}

// Threads create / write / migrate / checksum / read / destroy their own
// objects with random faults. Reads and checksums see the owner's last
// write, zeros, or a refusal; never another owner's bytes. With everything
// destroyed, every region's accounting is back to zero.
TEST(CudaFailsafeScenarioTest,
     ConcurrentClientsWithRandomFaultsKeepInvariants) {
  uint64_t seed = std::random_device{}();
  if (const char* s = std::getenv("GPUMIG_SEED")) {
    seed = std::strtoull(s, nullptr, 10);
  }
  std::printf("seed=%llu (set GPUMIG_SEED to replay)\n",
              static_cast<unsigned long long>(seed));
  std::string skip;
  Rig rig = MakeRig(4 << 20, 8 << 20, &skip);
  if (!skip.empty()) GTEST_SKIP() << skip;
  ASSERT_NE(rig.mm, nullptr);
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

  constexpr int kThreads = 4, kOps = 200;
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
      auto expected = [](const Obj& o) {
        return o.tag == 0 ? std::vector<uint8_t>(o.size, 0)
                          : Pattern(o.size, o.tag);
      };
      for (int op = 0; op < kOps; ++op) {
        const int what = rng() % 6;
        if (objs.empty() || what == 0) {
          MemoryManager::CreateRequest req;
          req.size = (1 + rng() % 64) * 4096;
          req.placements = rng() % 2 ? std::vector<std::string>{"lmem", "smem"}
                                     : std::vector<std::string>{"smem", "lmem"};
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
          if (s.ok() ? out != expected(o) : !absl::IsDataLoss(s)) {
            ++violations;
            ADD_FAILURE() << "read: " << s;
          }
        } else if (what == 4) {
          auto c = mm.ExecChecksum(me, o.id, 0, o.size, Soon());
          if (c.ok() && c->error.ok()) {
            const std::vector<uint8_t> want = expected(o);
            if (c->checksum != Fnv1a64(want.data(), want.size())) {
              ++violations;
              ADD_FAILURE() << "checksum differs";
            }
          }
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
  EXPECT_TRUE(mm.Shutdown(Soon()));
  for (const RegionInfo& r : mm.ListRegions()) {
    EXPECT_EQ(r.usage.allocated_bytes, 0u) << r.name << " seed=" << seed;
    EXPECT_EQ(r.usage.tables, 0u) << r.name;
  }
  EXPECT_TRUE(mm.CheckInvariantsForTest().ok());
}

}  // namespace
}  // namespace gpumig
