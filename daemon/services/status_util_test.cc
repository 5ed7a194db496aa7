#include "daemon/services/status_util.h"

#include "gtest/gtest.h"

namespace gpumig {
namespace daemon {
namespace {

TEST(StatusUtilTest, MapsEveryCodeOneToOne) {
  for (int c = 0; c <= 16; ++c) {
    const auto code = static_cast<absl::StatusCode>(c);
    const grpc::Status g = ToGrpcStatus(absl::Status(code, "why"));
    EXPECT_EQ(static_cast<int>(g.error_code()), c);
    if (c != 0 && code != absl::StatusCode::kPermissionDenied) {
      EXPECT_EQ(g.error_message(), "why");
    }
  }
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

TEST(StatusUtilTest, PermissionDeniedLeaksNothing) {
  const grpc::Status g =
      ToGrpcStatus(absl::PermissionDeniedError("object 5 of uid:1000 in lmem"));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(g.error_message(), "permission denied");
}

TEST(StatusUtilTest, FieldErrorsNameTheField) {
  absl::Status s = FieldError("size_bytes", "must be greater than 0");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "size_bytes: must be greater than 0");
  EXPECT_EQ(RangeError("offset", "x").code(), absl::StatusCode::kOutOfRange);
}

TEST(StatusUtilTest, CountsCallsAndErrorsPerMethod) {
  RpcStats stats;
  int observed = 0;
  stats.AddObserver(
      [&](absl::string_view, absl::StatusCode, absl::Duration) { ++observed; });
  stats.Record("/a/B", absl::StatusCode::kOk, absl::Milliseconds(1));
  stats.Record("/a/B", absl::StatusCode::kNotFound, absl::Milliseconds(1));
  stats.Record("/a/A", absl::StatusCode::kOk, absl::Milliseconds(1));
  std::vector<RpcStats::MethodStats> s = stats.Snapshot();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].method, "/a/A");
  EXPECT_EQ(s[1].calls, 2u);
  EXPECT_EQ(s[1].errors, 1u);
  EXPECT_EQ(observed, 3);
}

}  // namespace
}  // namespace daemon
}  // namespace gpumig
