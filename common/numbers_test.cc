#include "common/numbers.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace gpumig {
namespace {

TEST(ParseUint64Test, DecimalAndHex) {
  EXPECT_EQ(ParseUint64("0"), 0u);
  EXPECT_EQ(ParseUint64("4096"), 4096u);
  EXPECT_EQ(ParseUint64("0x1000"), 4096u);
  EXPECT_EQ(ParseUint64("0XfF"), 255u);
  EXPECT_EQ(ParseUint64("007"), 7u);
  EXPECT_EQ(ParseUint64("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(ParseUint64("0xffffffffffffffff"), UINT64_MAX);
}

TEST(ParseUint64Test, RefusesOverflowSignsSpacesAndSuffixes) {
  for (const char* bad : {"", "0x", "x10", "-1", "+1", " 1", "1 ", "12abc",
                          "0x1g", "1.0", "18446744073709551616",
                          "99999999999999999999", "0x10000000000000000"}) {
    EXPECT_FALSE(ParseUint64(bad).has_value()) << "'" << bad << "'";
  }
}

}  // namespace
}  // namespace gpumig
