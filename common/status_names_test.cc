#include "common/status_names.h"

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

TEST(StatusCodeNameTest, NamesEveryCanonicalCode) {
  // The names metrics labels and logs carry; google.rpc.Code's numbering.
  const struct {
    int code;
    const char* name;
  } kWant[] = {
      {0, "OK"},
      {1, "CANCELLED"},
      {3, "INVALID_ARGUMENT"},
      {8, "RESOURCE_EXHAUSTED"},
      {10, "ABORTED"},
      {14, "UNAVAILABLE"},
      {15, "DATA_LOSS"},
      {16, "UNAUTHENTICATED"},
  };
  for (const auto& want : kWant) {
    EXPECT_EQ(StatusCodeName(want.code), want.name) << want.code;
  }
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
