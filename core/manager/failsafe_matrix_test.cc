// The failsafe matrix, after i915's igt_lmem_pages_failsafe_migrate: every
// kind of move x every fault mode x inside/outside the CPU aperture, each
// object moved several times without waiting in between. Afterwards exactly
// one of two things holds, never anything else:
//   (1) the content is exactly what the owner wrote (zeros after create) and
//       the last fence has no error, or
//   (2) the object is unknown-state, every access is refused with DATA_LOSS,
//       and the fence that made it so carries the error.
// A move refused synchronously (ABORTED) leaves placement and content as
// they were.
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/device/sim_device.h"
#include "core/manager/memory_manager.h"
#include "core/manager/test_util.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

using testing::Pattern;
using testing::Soon;
using testing::User;

constexpr uint64_t kObj = 256 << 10;
constexpr uint64_t kLmem = 8 << 20;
constexpr uint64_t kAperture = 2 << 20;

// How the object moves. Each case is a placement list and a route of
// regions visited after creation.
enum class Move { kCreate, kLmemToSmem, kSmemToLmem, kLmemToLmem, kEvict };
// The fault mode (i915's fail_gpu_migration / fail_work_allocation /
// ban_memcpy combinations).
enum class Fault { kNone, kBlit, kBlitBan, kBlitAlloc, kBlitAllocBan };

std::string MoveName(Move m) {
  switch (m) {
    case Move::kCreate:
      return "Create";
    case Move::kLmemToSmem:
      return "LmemToSmem";
    case Move::kSmemToLmem:
      return "SmemToLmem";
    case Move::kLmemToLmem:
      return "LmemToLmem";
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

using Param = std::tuple<Move, Fault, bool /*inside aperture*/>;

class FailsafeMatrixTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    auto faults = std::make_unique<FaultInjector>();
    faults_ = faults.get();
    SimDeviceConfig config;
    config.regions.push_back({"lmem", RegionKind::kLmem, kLmem, kAperture});
    config.regions.push_back({"lmem2", RegionKind::kLmem, kLmem, kAperture});
    config.regions.push_back({"smem", RegionKind::kSmem, 16 << 20, 16 << 20});
    auto device = SimDevice::Create(std::move(config), faults_);
    ASSERT_TRUE(device.ok()) << device.status();
    auto mm = MemoryManager::Create(std::move(faults), *std::move(device));
    ASSERT_TRUE(mm.ok()) << mm.status();
    mm_ = *std::move(mm);
    if (!inside()) {
      // Fill both apertures so plain LMEM placements land outside them.
      for (const char* r : {"lmem", "lmem2"}) {
        MemoryManager::CreateRequest fill;
        fill.size = kAperture;
        fill.placements = {r};
        fill.require_cpu_access = true;
        fill.pin = true;
        auto f = mm_->CreateObject(User(1), fill);
        ASSERT_TRUE(f.ok()) << f.status();
      }
    }
  }

  Move move() const { return std::get<0>(GetParam()); }
  Fault fault() const { return std::get<1>(GetParam()); }
  bool inside() const { return std::get<2>(GetParam()); }

  void ArmFaults(absl::string_view op) {
    if (fault() == Fault::kNone) return;
    FaultSpec blit;
    blit.kind = std::string(op) == "clear" ? FaultKind::kFailClear
                                           : FaultKind::kFailBlit;
    blit.op = std::string(op);
    ASSERT_TRUE(faults_->Add(blit).ok());
    if (fault() == Fault::kBlitBan || fault() == Fault::kBlitAllocBan) {
      FaultSpec ban;
      ban.kind = FaultKind::kBanMemcpy;
      ASSERT_TRUE(faults_->Add(ban).ok());
    }
    if (fault() == Fault::kBlitAlloc || fault() == Fault::kBlitAllocBan) {
      FaultSpec alloc;
      alloc.kind = FaultKind::kFailWorkAllocation;
      ASSERT_TRUE(faults_->Add(alloc).ok());
    }
  }

  // Would a CPU fallback be possible for a move touching these regions?
  bool CpuReachable(const std::string& region) const {
    return region == "smem" || inside();
  }

  uint64_t Create(std::vector<std::string> placements, uint64_t* fence) {
    MemoryManager::CreateRequest req;
    req.size = kObj;
    req.placements = std::move(placements);
    req.require_cpu_access = inside();
    auto r = mm_->CreateObject(User(1000), req);
    if (!r.ok()) {
      create_status_ = r.status();
      return 0;
    }
    *fence = r->fence_id;
    return r->object_id;
  }

  // Checks outcome (1) or (2) for the object, given the fence of its last
  // accepted move and whether memcpy was possible all along.
  void CheckOneOfTwo(uint64_t id, uint64_t fence_id,
                     const std::vector<uint8_t>& expected) {
    auto fence = mm_->WaitFence(User(1000), fence_id, Soon());
    ASSERT_TRUE(fence.ok()) << fence.status();
    auto info = mm_->GetObject(User(1000), id);
    ASSERT_TRUE(info.ok()) << info.status();
    std::vector<uint8_t> out(kObj, 0xEE);
    absl::Status read =
        mm_->Read(User(1000), id, 0, absl::MakeSpan(out), Soon());
    if (info->state == ObjectState::kOk) {
      ASSERT_TRUE(read.ok()) << read;
      EXPECT_TRUE(out == expected) << "content differs from what was written";
      EXPECT_TRUE(fence->error.ok()) << fence->error;
    } else {
      EXPECT_EQ(read.code(), absl::StatusCode::kDataLoss) << read;
      for (uint8_t b : out) ASSERT_EQ(b, 0xEE) << "read returned bytes";
      EXPECT_EQ(mm_->Write(User(1000), id, 0, expected, Soon()).code(),
                absl::StatusCode::kDataLoss);
      EXPECT_EQ(mm_->ExecFill(User(1000), id, 0, 16, 1).status().code(),
                absl::StatusCode::kDataLoss);
      EXPECT_EQ(
          mm_->ExecChecksum(User(1000), id, 0, 16, Soon()).status().code(),
          absl::StatusCode::kDataLoss);
      EXPECT_EQ(mm_->Migrate(User(1000), id, "smem").status().code(),
                absl::StatusCode::kDataLoss);
      // Some fence of the chain carries the error; the last one does when
      // the unknown state was reached by it or propagated to it.
      EXPECT_EQ(fence->error.code(), absl::StatusCode::kDataLoss)
          << "unknown-state object but its last fence has no error";
      EXPECT_EQ(fence->outcome, MoveOutcome::kUnknownState);
    }
  }

  FaultInjector* faults_ = nullptr;
  std::unique_ptr<MemoryManager> mm_;
  absl::Status create_status_;
};

TEST_P(FailsafeMatrixTest, ContentExactOrUnknownNeverAnythingElse) {
  const bool ban =
      fault() == Fault::kBlitBan || fault() == Fault::kBlitAllocBan;
  const bool sync =
      fault() == Fault::kBlitAlloc || fault() == Fault::kBlitAllocBan;

  if (move() == Move::kCreate) {
    ArmFaults("clear");
    uint64_t fence = 0;
    uint64_t id = Create({"lmem"}, &fence);
    const bool memcpy_ok = !ban && CpuReachable("lmem");
    if (sync && fault() != Fault::kNone && !memcpy_ok) {
      // Synchronous path without fallback: nothing is created.
      EXPECT_EQ(id, 0u);
      EXPECT_EQ(create_status_.code(), absl::StatusCode::kAborted)
          << create_status_;
      return;
    }
    ASSERT_NE(id, 0u) << create_status_;
    CheckOneOfTwo(id, fence, std::vector<uint8_t>(kObj, 0));
    auto info = mm_->GetObject(User(1000), id);
    const bool expect_unknown = fault() != Fault::kNone && !memcpy_ok;
    EXPECT_EQ(info->state == ObjectState::kUnknown, expect_unknown);
    auto f = mm_->GetFence(User(1000), fence);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f->outcome, fault() == Fault::kNone ? MoveOutcome::kBlitOk
                          : expect_unknown        ? MoveOutcome::kUnknownState
                                           : MoveOutcome::kFallbackClear);
    return;
  }

  // Create cleanly, write a pattern, then arm the faults and move.
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
    case Move::kLmemToLmem:
      placements = {"lmem", "lmem2"};
      route = {"lmem2", "lmem", "lmem2"};
      break;
    case Move::kEvict:
      placements = {"lmem", "smem"};
      break;
    case Move::kCreate:
      break;
  }
  uint64_t fence = 0;
  uint64_t id = Create(placements, &fence);
  ASSERT_NE(id, 0u) << create_status_;
  const std::vector<uint8_t> data = Pattern(kObj, 42);
  ASSERT_TRUE(mm_->Write(User(1000), id, 0, data, Soon()).ok());

  if (move() == Move::kEvict) {
    ArmFaults("evict");
    auto evicted = mm_->EvictRegion("lmem");
    ASSERT_TRUE(evicted.ok()) << evicted.status();
    auto info = mm_->GetObject(User(1000), id);
    ASSERT_TRUE(info.ok());
    const bool memcpy_ok = !ban && CpuReachable("lmem");
    if (fault() != Fault::kNone && sync && !memcpy_ok) {
      EXPECT_EQ(evicted->objects_evicted, 0u);
      EXPECT_EQ(info->region, "lmem") << "a failed eviction moved the object";
    } else {
      EXPECT_EQ(evicted->objects_evicted, 1u);
      EXPECT_EQ(info->region, "smem");
    }
    CheckOneOfTwo(id, info->move_fence_id, data);
    info = mm_->GetObject(User(1000), id);  // Final once the fence signalled.
    EXPECT_EQ(info->state == ObjectState::kUnknown,
              fault() != Fault::kNone && !memcpy_ok && !sync);
    // The eviction timeline's fence carries the failsafe's verdict.
    auto region = mm_->GetRegion("lmem");
    ASSERT_TRUE(region.ok());
    EXPECT_EQ(region->eviction_timeline_seqno,
              fault() != Fault::kNone && sync && !memcpy_ok ? 0u : 1u);
    return;
  }

  ArmFaults("copy");
  uint64_t last_fence = fence;
  std::string at = placements[0];
  for (const std::string& to : route) {
    auto f = mm_->Migrate(User(1000), id, to);
    if (f.ok()) {
      last_fence = *f;
      at = to;
      continue;
    }
    // Refusals allowed: ABORTED (synchronous, nothing changed) or DATA_LOSS
    // (already known to be unknown).
    ASSERT_TRUE(absl::IsAborted(f.status()) || absl::IsDataLoss(f.status()))
        << f.status();
    if (absl::IsAborted(f.status())) {
      auto info = mm_->GetObject(User(1000), id);
      EXPECT_EQ(info->region, at) << "ABORTED move changed the placement";
    }
  }
  CheckOneOfTwo(id, last_fence, data);
  auto info = mm_->GetObject(User(1000), id);
  const bool memcpy_ok = !ban && inside();  // LMEM is on every route.
  if (fault() == Fault::kNone || memcpy_ok || sync) {
    EXPECT_EQ(info->state, ObjectState::kOk);
    auto f = mm_->GetFence(User(1000), last_fence);
    ASSERT_TRUE(f.ok());
    if (fault() == Fault::kNone) {
      EXPECT_EQ(f->outcome, MoveOutcome::kBlitOk);
    } else if (memcpy_ok) {
      // The clear-instead-of-copy trick: only a real fallback passes.
      EXPECT_EQ(f->outcome, MoveOutcome::kFallbackCopy);
    }
  } else {
    EXPECT_EQ(info->state, ObjectState::kUnknown);
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllMovesFaultsApertures, FailsafeMatrixTest,
    ::testing::Combine(::testing::Values(Move::kCreate, Move::kLmemToSmem,
                                         Move::kSmemToLmem, Move::kLmemToLmem,
                                         Move::kEvict),
                       ::testing::Values(Fault::kNone, Fault::kBlit,
                                         Fault::kBlitBan, Fault::kBlitAlloc,
                                         Fault::kBlitAllocBan),
                       ::testing::Bool()),
    [](const ::testing::TestParamInfo<Param>& info) {
      return absl::StrCat(
          MoveName(std::get<0>(info.param)), "_",
          FaultName(std::get<1>(info.param)), "_",
          std::get<2>(info.param) ? "InsideAperture" : "OutsideAperture");
    });

}  // namespace
}  // namespace gpumig
