// The daemon's enum tables against the gpumig.v1 enums: every core value the
// daemon sends has its own wire value, and the fault kinds of the core's
// table and of the proto are the same list under one spelling.
#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "core/fault/fault_kind.h"
#include "daemon/services/convert.h"
#include "gtest/gtest.h"
#include "proto/enum_names.h"

namespace gpumig {
namespace daemon {
namespace {

TEST(ConvertEnumsTest, CoreAndProtoListTheSameFaultKindsUnderOneName) {
  std::set<int> seen;
  for (const FaultKindEntry& k : kFaultKinds) {
    const v1::FaultKind p = FaultKindToProto(k.kind);
    ASSERT_NE(p, v1::FAULT_KIND_UNSPECIFIED) << k.name;
    EXPECT_EQ(absl::AsciiStrToLower(enums::ShortName(p)), k.name);
    absl::StatusOr<FaultKind> back = FaultKindFromProto(p);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, k.kind);
    seen.insert(p);
  }
  EXPECT_EQ(seen.size(), kNumFaultKinds);
  EXPECT_EQ(enums::Values<v1::FaultKind>().size(), kNumFaultKinds);
}

TEST(ConvertEnumsTest, FaultKindFromProtoRefusesUnspecifiedAndUnknown) {
  EXPECT_EQ(FaultKindFromProto(v1::FAULT_KIND_UNSPECIFIED).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FaultKindFromProto(static_cast<v1::FaultKind>(99)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ConvertEnumsTest, EveryFenceKindHasItsOwnWireValue) {
  std::set<int> seen;
  for (FenceKind kind :
       {FenceKind::kClear, FenceKind::kMigrate, FenceKind::kEvict,
        FenceKind::kExec, FenceKind::kArray}) {
    FenceInfo f;
    f.kind = kind;
    v1::FenceStatus p;
    FenceToProto(f, &p);
    EXPECT_NE(p.kind(), v1::FENCE_KIND_UNSPECIFIED);
    seen.insert(p.kind());
  }
  EXPECT_EQ(seen.size(), enums::Values<v1::FenceKind>().size());
}

TEST(ConvertEnumsTest, EverySignalledMoveOutcomeHasItsOwnWireValue) {
  std::set<int> seen;
  for (MoveOutcome o :
       {MoveOutcome::kBlitOk, MoveOutcome::kFallbackCopy,
        MoveOutcome::kFallbackClear, MoveOutcome::kFallbackDeviceCopy,
        MoveOutcome::kFallbackDeviceClear, MoveOutcome::kUnknownState,
        MoveOutcome::kFailed}) {
    FenceInfo f;
    f.signaled = true;
    f.outcome = o;
    EXPECT_NE(OutcomeOf(f), v1::FENCE_OUTCOME_UNSPECIFIED);
    seen.insert(OutcomeOf(f));
  }
  EXPECT_EQ(seen.size(), enums::Values<v1::FenceOutcome>().size());
  // A move force-signalled before its work recorded an outcome.
  FenceInfo pending;
  pending.signaled = true;
  pending.outcome = MoveOutcome::kPending;
  EXPECT_EQ(OutcomeOf(pending), v1::FENCE_OUTCOME_BLIT_OK);
  pending.error = absl::AbortedError("shutting down");
  EXPECT_EQ(OutcomeOf(pending), v1::FENCE_OUTCOME_FAILED);
}

TEST(ConvertEnumsTest, RegionKindsMapToTheirWireValues) {
  RegionInfo r;
  v1::Region p;
  r.kind = RegionKind::kLmem;
  RegionToProto(r, &p);
  EXPECT_EQ(p.kind(), v1::REGION_KIND_LMEM);
  r.kind = RegionKind::kSmem;
  RegionToProto(r, &p);
  EXPECT_EQ(p.kind(), v1::REGION_KIND_SMEM);
}

TEST(ConvertEnumsTest, FaultOpsRoundTripAndUnknownOpsAreRefused) {
  for (v1::FenceKind op :
       {v1::FENCE_KIND_CLEAR, v1::FENCE_KIND_MIGRATE, v1::FENCE_KIND_EVICT}) {
    v1::FaultSpec s;
    s.set_kind(v1::FAULT_KIND_FAIL_BLIT);
    s.mutable_trigger()->set_always(true);
    s.set_op(op);
    absl::StatusOr<FaultSpec> f = FaultSpecFromProto(s, {}, 1);
    ASSERT_TRUE(f.ok()) << f.status();
    v1::FaultSpec back;
    FaultSpecToProto(*f, &back);
    EXPECT_EQ(back.op(), op);
  }
  v1::FaultSpec s;
  s.set_kind(v1::FAULT_KIND_FAIL_BLIT);
  s.mutable_trigger()->set_always(true);
  s.set_op(static_cast<v1::FenceKind>(42));
  absl::StatusOr<FaultSpec> f = FaultSpecFromProto(s, {}, 1);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.status().message(), "spec.op: not a FenceKind value");
}

}  // namespace
}  // namespace daemon
}  // namespace gpumig
