#include "common/duration.h"

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

TEST(ParseNonNegativeDurationTest, UnitsBareSecondsAndInfinity) {
  EXPECT_EQ(*ParseNonNegativeDuration("10s"), absl::Seconds(10));
  EXPECT_EQ(*ParseNonNegativeDuration("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseNonNegativeDuration("250ms"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseNonNegativeDuration("0.5"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseNonNegativeDuration("0"), absl::ZeroDuration());
  EXPECT_EQ(*ParseNonNegativeDuration("inf"), absl::InfiniteDuration());
}

TEST(ParseNonNegativeDurationTest, RefusesNegativeNonFiniteAndGarbage) {
  for (const char* bad : {"", "-1s", "-0.5", "nan", "infinity", "1e999", ".5",
                          " 1s", "1 s", "s", "10x", "-inf"}) {
    absl::StatusOr<absl::Duration> d = ParseNonNegativeDuration(bad);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument)
        << "'" << bad << "'";
  }
}

TEST(FormatDurationRoundedTest, KeepsAboutThreeDigits) {
  EXPECT_EQ(FormatDurationRounded(absl::Nanoseconds(1234567)), "1.234ms");
  EXPECT_EQ(FormatDurationRounded(absl::Milliseconds(3723500)), "1h2m3s");
  EXPECT_EQ(FormatDurationRounded(absl::Nanoseconds(999)), "999ns");
  EXPECT_EQ(FormatDurationRounded(absl::Microseconds(-1500)), "-1.5ms");
  EXPECT_EQ(FormatDurationRounded(absl::ZeroDuration()), "0");
}

}  // namespace
}  // namespace gpumig
