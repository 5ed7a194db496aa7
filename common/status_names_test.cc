#include "common/status_names.h"

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

TEST(StatusCodeNameTest, NamesEveryCanonicalCode) {
  EXPECT_EQ(StatusCodeName(0), "OK");
  EXPECT_EQ(StatusCodeName(1), "CANCELLED");
  EXPECT_EQ(StatusCodeName(3), "INVALID_ARGUMENT");
  EXPECT_EQ(StatusCodeName(8), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(StatusCodeName(14), "UNAVAILABLE");
  EXPECT_EQ(StatusCodeName(15), "DATA_LOSS");
  EXPECT_EQ(StatusCodeName(16), "UNAUTHENTICATED");
  EXPECT_EQ(StatusCodeName(absl::StatusCode::kAborted), "ABORTED");
  for (int code = 0; code < kStatusCodeCount; ++code) {
    EXPECT_EQ(StatusCodeName(code),
              absl::StatusCodeToString(static_cast<absl::StatusCode>(code)));
  }
}

TEST(StatusCodeNameTest, OutOfRangeIsUnknown) {
  EXPECT_EQ(StatusCodeName(-1), "UNKNOWN");
  EXPECT_EQ(StatusCodeName(17), "UNKNOWN");
  EXPECT_EQ(StatusCodeName(static_cast<absl::StatusCode>(1000)), "UNKNOWN");
}

}  // namespace
}  // namespace gpumig
