#include "common/bytes.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

constexpr ByteSizeSyntax kCli = ByteSizeSyntax::kCommandLine;
constexpr ByteSizeSyntax kConfig = ByteSizeSyntax::kConfigFile;

// The error code for `text`, and (when refused) that the message starts as
// the syntax's callers expect.
absl::StatusCode CodeOf(absl::string_view text, ByteSizeSyntax syntax) {
  absl::StatusOr<uint64_t> v = ParseByteSize(text, syntax);
  if (!v.ok()) {
    const std::string prefix = syntax == kCli ? "bad size '" : "size \"";
    EXPECT_EQ(v.status().message().substr(0, prefix.size()), prefix)
        << v.status();
  }
  return v.status().code();
}

TEST(ParseByteSizeTest, CommandLineTakesShortUnitsAnyCaseAndHex) {
  EXPECT_EQ(*ParseByteSize("4096", kCli), 4096u);
  EXPECT_EQ(*ParseByteSize("4k", kCli), 4096u);
  EXPECT_EQ(*ParseByteSize("4KB", kCli), 4096u);
  EXPECT_EQ(*ParseByteSize("4kIb", kCli), 4096u);
  EXPECT_EQ(*ParseByteSize("3T", kCli), uint64_t{3} << 40);
  EXPECT_EQ(*ParseByteSize("0X1f", kCli), 31u);
  EXPECT_EQ(*ParseByteSize("0x10M", kCli), 16u << 20);
  EXPECT_EQ(*ParseByteSize("0b", kCli), 0u);
}

TEST(ParseByteSizeTest, ConfigTakesOnlyBinaryUnitsAndSpaces) {
  EXPECT_EQ(*ParseByteSize("\t64 MiB\n", kConfig), 64u << 20);
  EXPECT_EQ(*ParseByteSize("1TiB", kConfig), uint64_t{1} << 40);
  EXPECT_EQ(*ParseByteSize("7 B", kConfig), 7u);
  for (const char* bad : {"1K", "1KB", "1kib", "1MB", "0x10", "1 mib"}) {
    EXPECT_EQ(CodeOf(bad, kConfig), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ParseByteSizeTest, LargestValueFitsAndOneMoreOverflows) {
  // 16 EiB - 1 is the largest; 16 EiB (2^64) and 16 EiB + 1 overflow,
  // whether written as digits, hex or with a unit.
  for (ByteSizeSyntax syntax : {kCli, kConfig}) {
    EXPECT_EQ(*ParseByteSize("18446744073709551615", syntax), UINT64_MAX);
    EXPECT_EQ(CodeOf("18446744073709551616", syntax),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(CodeOf("18446744073709551617", syntax),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(*ParseByteSize("16777215TiB", syntax), uint64_t{16777215} << 40);
    EXPECT_EQ(CodeOf("16777216TiB", syntax),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(CodeOf("99999999999999999999999", syntax),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(*ParseByteSize("0xffffffffffffffff", kCli), UINT64_MAX);
  EXPECT_EQ(CodeOf("0x10000000000000000", kCli),
            absl::StatusCode::kInvalidArgument);
}

TEST(ParseByteSizeTest, RefusesSignsFractionsAndGarbageWithTheReason) {
  for (ByteSizeSyntax syntax : {kCli, kConfig}) {
    for (const char* bad :
         {"", " ", "K", "MiB", "-1", "+1", "1.5MiB", "1e3", "4X", "1GiB x"}) {
      EXPECT_EQ(CodeOf(bad, syntax), absl::StatusCode::kInvalidArgument)
          << "'" << bad << "'";
    }
  }
  EXPECT_EQ(ParseByteSize("1.5M", kCli).status().message(),
            "bad size '1.5M': fractions are not supported (examples: 4096, "
            "4K, 1M, 64MiB, 0x1000)");
  EXPECT_EQ(ParseByteSize("4X", kCli).status().message(),
            "bad size '4X': unknown unit 'X' (examples: 4096, 4K, 1M, 64MiB, "
            "0x1000)");
  EXPECT_EQ(ParseByteSize("1 MB", kConfig).status().message(),
            "size \"1 MB\": unknown unit \"MB\" (use B, KiB, MiB, GiB or TiB)");
  EXPECT_EQ(ParseByteSize("lots", kConfig).status().message(),
            "size \"lots\" is not a number with an optional unit (B, KiB, "
            "MiB, GiB, TiB)");
  EXPECT_EQ(ParseByteSize("16777216TiB", kConfig).status().message(),
            "size \"16777216TiB\" is too large");
}

TEST(FormatBytesTest, OneDecimalUnlessWhole) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1024), "1 KiB");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(64u << 20), "64 MiB");
  EXPECT_EQ(FormatBytes(uint64_t{5} << 40), "5 TiB");
  // TiB is the largest unit: 16 EiB - 1 is about 16 Mi TiB.
  EXPECT_EQ(FormatBytes(UINT64_MAX), "16777216.0 TiB");
}

TEST(FormatBytesExactTest, LargestUnitThatDivides) {
  EXPECT_EQ(FormatBytesExact(0), "0 B");
  EXPECT_EQ(FormatBytesExact(1536), "1536 B");
  EXPECT_EQ(FormatBytesExact(4096), "4 KiB");
  EXPECT_EQ(FormatBytesExact((uint64_t{3} << 30) + 4096), "3145732 KiB");
  EXPECT_EQ(FormatBytesExact(uint64_t{1} << 50), "1024 TiB");
  EXPECT_EQ(FormatBytesExact(UINT64_MAX), "18446744073709551615 B");
}

}  // namespace
}  // namespace gpumig
