#include "daemon/services/convert.h"

#include "gtest/gtest.h"

namespace gpumig {
namespace daemon {
namespace {

const std::vector<std::string> kRegions = {"lmem", "smem"};

v1::FaultSpec Spec(v1::FaultKind kind) {
  v1::FaultSpec s;
  s.set_kind(kind);
  s.mutable_trigger()->set_always(true);
  return s;
}

std::string ErrorOf(const v1::FaultSpec& s) {
  absl::StatusOr<FaultSpec> f = FaultSpecFromProto(s, kRegions, 7);
  EXPECT_FALSE(f.ok());
  if (f.ok()) return "";
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(f.status().message());
}

TEST(ConvertTest, FaultSpecRoundTrips) {
  v1::FaultSpec s = Spec(v1::FAULT_KIND_FAIL_BLIT);
  s.set_region("smem");
  s.set_op(v1::FENCE_KIND_MIGRATE);
  absl::StatusOr<FaultSpec> f = FaultSpecFromProto(s, kRegions, 7);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->kind, FaultKind::kFailBlit);
  EXPECT_EQ(f->op, "copy");
  EXPECT_EQ(f->region, "smem");
  v1::FaultSpec back;
  FaultSpecToProto(*f, &back);
  EXPECT_EQ(back.SerializeAsString(), s.SerializeAsString());
}

TEST(ConvertTest, ProbabilitySeedZeroGetsTheDaemonsSeed) {
  v1::FaultSpec s;
  s.set_kind(v1::FAULT_KIND_FAIL_CLEAR);
  s.mutable_trigger()->mutable_probability()->set_p(0.5);
  absl::StatusOr<FaultSpec> f = FaultSpecFromProto(s, kRegions, 1234);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->seed, 1234u);
  s.mutable_trigger()->mutable_probability()->set_seed(5);
  EXPECT_EQ(FaultSpecFromProto(s, kRegions, 1234)->seed, 5u);
}

TEST(ConvertTest, BadFaultSpecsNameTheField) {
  EXPECT_EQ(ErrorOf(Spec(v1::FAULT_KIND_UNSPECIFIED)).rfind("spec.kind:", 0),
            0u);
  v1::FaultSpec s = Spec(v1::FAULT_KIND_FAIL_BLIT);
  s.clear_trigger();
  EXPECT_EQ(ErrorOf(s).rfind("spec.trigger:", 0), 0u);
  s.mutable_trigger()->set_next_n(0);
  EXPECT_EQ(ErrorOf(s).rfind("spec.trigger.next_n:", 0), 0u);
  s.mutable_trigger()->set_always(false);
  EXPECT_EQ(ErrorOf(s).rfind("spec.trigger.always:", 0), 0u);
  s.mutable_trigger()->mutable_probability()->set_p(1.5);
  EXPECT_EQ(ErrorOf(s).rfind("spec.trigger.probability.p:", 0), 0u);
  s.mutable_trigger()->mutable_probability()->set_p(std::nan(""));
  EXPECT_EQ(ErrorOf(s).rfind("spec.trigger.probability.p:", 0), 0u);
  s = Spec(v1::FAULT_KIND_FAIL_BLIT);
  s.set_region("vram");
  EXPECT_EQ(ErrorOf(s).rfind("spec.region:", 0), 0u);
  s = Spec(v1::FAULT_KIND_FAIL_BLIT);
  s.set_op(v1::FENCE_KIND_EXEC);
  EXPECT_EQ(ErrorOf(s).rfind("spec.op:", 0), 0u);
  s = Spec(v1::FAULT_KIND_WEDGE_ENGINE);
  s.set_op(v1::FENCE_KIND_CLEAR);
  EXPECT_EQ(ErrorOf(s).rfind("spec.op:", 0), 0u);
  EXPECT_EQ(
      ErrorOf(Spec(v1::FAULT_KIND_ENGINE_LATENCY)).rfind("spec.latency_us:", 0),
      0u);
  s = Spec(v1::FAULT_KIND_FAIL_CLEAR);
  s.set_latency_us(5);
  EXPECT_EQ(ErrorOf(s).rfind("spec.latency_us:", 0), 0u);
}

TEST(ConvertTest, ExecFenceOutcomeFollowsItsError) {
  FenceInfo f;
  f.kind = FenceKind::kExec;
  EXPECT_EQ(OutcomeOf(f), v1::FENCE_OUTCOME_UNSPECIFIED);
  f.signaled = true;
  EXPECT_EQ(OutcomeOf(f), v1::FENCE_OUTCOME_BLIT_OK);
  f.error = absl::InternalError("copy engine wedged");
  EXPECT_EQ(OutcomeOf(f), v1::FENCE_OUTCOME_FAILED);
  EXPECT_EQ(EventKindOf(f), v1::EVENT_KIND_FAILED);
}

TEST(ConvertTest, FenceStatusCarriesOutcomeAndErrors) {
  FenceInfo f;
  f.id = 9;
  f.kind = FenceKind::kMigrate;
  f.signaled = true;
  f.outcome = MoveOutcome::kUnknownState;
  f.error = absl::DataLossError("blit failed outside the aperture");
  f.object_id = 3;
  f.src_region = "smem";
  f.dst_region = "lmem";
  f.created = absl::FromUnixNanos(5);
  f.signaled_at = absl::FromUnixNanos(6);
  v1::FenceStatus s;
  FenceToProto(f, &s);
  EXPECT_EQ(s.state(), v1::FENCE_STATE_SIGNALED);
  EXPECT_EQ(s.outcome(), v1::FENCE_OUTCOME_UNKNOWN_STATE);
  EXPECT_EQ(s.error_code(), static_cast<int>(absl::StatusCode::kDataLoss));
  EXPECT_EQ(s.engine_error_code(), s.error_code());  // No engine report.
  EXPECT_EQ(s.handle(), "obj-3");
  EXPECT_EQ(s.kind(), v1::FENCE_KIND_MIGRATE);
  EXPECT_EQ(s.signaled_unix_nanos(), 6);
  EXPECT_EQ(EventKindOf(f), v1::EVENT_KIND_UNKNOWN_STATE);

  f.outcome = MoveOutcome::kFallbackCopy;
  f.error = absl::OkStatus();
  f.engine_error = absl::InternalError("injected blit failure");
  s.Clear();
  FenceToProto(f, &s);
  EXPECT_EQ(s.error_code(), 0);
  EXPECT_EQ(s.engine_error_code(),
            static_cast<int>(absl::StatusCode::kInternal));
  EXPECT_EQ(s.engine_error_message(), "injected blit failure");
  EXPECT_EQ(EventKindOf(f), v1::EVENT_KIND_FALLBACK_TAKEN);
}

}  // namespace
}  // namespace daemon
}  // namespace gpumig
