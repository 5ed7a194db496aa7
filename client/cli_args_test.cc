#include "client/cli_args.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace gpumig::cli {
namespace {

const std::vector<FlagSpec>& Specs() {
  static const auto* specs = new std::vector<FlagSpec>{
      {"offset", "N", "where"},
      {"wait", "", "wait"},
      {"label", "L", "label"},
      {"help", "", "help", 'h'},
  };
  return *specs;
}

absl::StatusOr<ParsedArgs> Parse(std::vector<std::string> args) {
  return ParseArgs(args, Specs());
}

TEST(ParseArgsTest, PositionalsAndFlagsInterleave) {
  auto p = Parse({"obj-1", "--offset", "4K", "file.bin", "--wait"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->positional(), (std::vector<std::string>{"obj-1", "file.bin"}));
  EXPECT_EQ(p->Get("offset"), "4K");
  EXPECT_TRUE(p->Has("wait"));
  EXPECT_FALSE(p->Has("label"));
  EXPECT_EQ(p->Get("label"), std::nullopt);
  EXPECT_EQ(p->GetOr("label", "none"), "none");
}

TEST(ParseArgsTest, EqualsFormTakesValueVerbatim) {
  auto p = Parse({"--label=a=b c", "--offset=0"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->Get("label"), "a=b c");
  EXPECT_EQ(p->Get("offset"), "0");
}

TEST(ParseArgsTest, EmptyValueIsAValue) {
  auto p = Parse({"--label="});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->Get("label"), "");
  EXPECT_TRUE(p->Has("label"));
}

TEST(ParseArgsTest, ValueMayStartWithDash) {
  auto p = Parse({"--label", "-x"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->Get("label"), "-x");
}

TEST(ParseArgsTest, DashIsPositional) {
  auto p = Parse({"obj-1", "-"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->positional(), (std::vector<std::string>{"obj-1", "-"}));
}

TEST(ParseArgsTest, DoubleDashEndsFlags) {
  auto p = Parse({"--wait", "--", "--offset", "-h"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->Has("wait"));
  EXPECT_FALSE(p->Has("offset"));
  EXPECT_EQ(p->positional(), (std::vector<std::string>{"--offset", "-h"}));
}

TEST(ParseArgsTest, ShortAlias) {
  auto p = Parse({"-h"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->Has("help"));
}

TEST(ParseArgsTest, BooleanAcceptsExplicitTrueFalse) {
  auto p = Parse({"--wait=false"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->Has("wait"));
  EXPECT_TRUE(p->Given("wait"));
  p = Parse({"--wait=true"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->Has("wait"));
}

TEST(ParseArgsTest, UnknownFlagIsRejected) {
  auto p = Parse({"--bogus"});
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("--bogus"), std::string::npos);
  EXPECT_EQ(Parse({"-x"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse({"--bogus=1"}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ParseArgsTest, MissingValueIsRejected) {
  auto p = Parse({"obj-1", "--offset"});
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("needs a value"), std::string::npos);
}

TEST(ParseArgsTest, FlagGivenTwiceIsRejected) {
  auto p = Parse({"--offset", "1", "--offset=2"});
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("twice"), std::string::npos);
}

TEST(ParseArgsTest, BooleanWithGarbageValueIsRejected) {
  EXPECT_EQ(Parse({"--wait=maybe"}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ParseArgsTest, NoArgumentsIsEmpty) {
  auto p = Parse({});
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->positional().empty());
}

TEST(FormatFlagHelpTest, AlignsHelpColumn) {
  std::string help = FormatFlagHelp(Specs());
  EXPECT_NE(help.find("  --offset N"), std::string::npos);
  EXPECT_NE(help.find("  -h, --help"), std::string::npos);
  // Every help text starts in the same column.
  size_t col = std::string::npos;
  size_t start = 0;
  for (const char* text : {"where", "wait\n", "label\n", "help\n"}) {
    size_t pos = help.find(text, start);
    ASSERT_NE(pos, std::string::npos) << text;
    size_t line_start = help.rfind('\n', pos);
    line_start = line_start == std::string::npos ? 0 : line_start + 1;
    if (col == std::string::npos) col = pos - line_start;
    EXPECT_EQ(pos - line_start, col) << text;
    start = pos;
  }
}

TEST(ParseSizeTest, PlainAndSuffixed) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("0"), 0u);
  EXPECT_EQ(*ParseSize("4K"), 4096u);
  EXPECT_EQ(*ParseSize("4k"), 4096u);
  EXPECT_EQ(*ParseSize("4KB"), 4096u);
  EXPECT_EQ(*ParseSize("4KiB"), 4096u);
  EXPECT_EQ(*ParseSize("1M"), 1u << 20);
  EXPECT_EQ(*ParseSize("64MiB"), 64u << 20);
  EXPECT_EQ(*ParseSize("64mib"), 64u << 20);
  EXPECT_EQ(*ParseSize("2G"), uint64_t{2} << 30);
  EXPECT_EQ(*ParseSize("1TiB"), uint64_t{1} << 40);
  EXPECT_EQ(*ParseSize("512B"), 512u);
  EXPECT_EQ(*ParseSize("0x1000"), 4096u);
  EXPECT_EQ(*ParseSize("0x10K"), 16u << 10);
}

TEST(ParseSizeTest, LargestValues) {
  EXPECT_EQ(*ParseSize("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(*ParseSize("16777215T"), uint64_t{16777215} << 40);
}

TEST(ParseSizeTest, RejectsGarbage) {
  for (const char* bad :
       {"", "K", "abc", "-4096", "+4096", "4 K", " 4K", "4K ", "4X", "4KX",
        "1.5M", "0x", "4MiBB", "18446744073709551616", "16777216T", "4e3"}) {
    absl::StatusOr<uint64_t> size = ParseSize(bad);
    EXPECT_EQ(size.status().code(), absl::StatusCode::kInvalidArgument)
        << "'" << bad << "'";
    if (!size.ok()) {
      EXPECT_NE(size.status().message().find("bad size"), std::string::npos);
    }
  }
}

TEST(ParseUintTest, BoundsAndBases) {
  EXPECT_EQ(*ParseUint("0"), 0u);
  EXPECT_EQ(*ParseUint("255", 255), 255u);
  EXPECT_EQ(*ParseUint("0xff", 255), 255u);
  EXPECT_EQ(ParseUint("256", 255).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseUint("-1").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseUint("12abc").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseUint("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseProbabilityTest, UnitInterval) {
  EXPECT_EQ(*ParseProbability("0"), 0.0);
  EXPECT_EQ(*ParseProbability("1"), 1.0);
  EXPECT_EQ(*ParseProbability("0.25"), 0.25);
  EXPECT_FALSE(ParseProbability("1.5").ok());
  EXPECT_FALSE(ParseProbability("-0.1").ok());
  EXPECT_FALSE(ParseProbability("nan").ok());
  EXPECT_FALSE(ParseProbability("half").ok());
}

TEST(ParseDurationFlagTest, UnitsAndBareSeconds) {
  EXPECT_EQ(*ParseDurationFlag("10s"), absl::Seconds(10));
  EXPECT_EQ(*ParseDurationFlag("250ms"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseDurationFlag("2m"), absl::Minutes(2));
  EXPECT_EQ(*ParseDurationFlag("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDurationFlag("10"), absl::Seconds(10));
  EXPECT_EQ(*ParseDurationFlag("0.5"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseDurationFlag("0"), absl::ZeroDuration());
  EXPECT_EQ(*ParseDurationFlag("inf"), absl::InfiniteDuration());
}

TEST(ParseDurationFlagTest, RejectsNegativeAndGarbage) {
  for (const char* bad : {"", "-1s", "-5", "ten", "10 s", "s", "1x"}) {
    EXPECT_EQ(ParseDurationFlag(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << "'" << bad << "'";
  }
}

TEST(SplitListTest, DropsEmptyItemsAndSpaces) {
  EXPECT_EQ(SplitList("lmem,smem"), (std::vector<std::string>{"lmem", "smem"}));
  EXPECT_EQ(SplitList("lmem, smem,,"),
            (std::vector<std::string>{"lmem", "smem"}));
  EXPECT_TRUE(SplitList("").empty());
}

TEST(ExitCodeTest, EachErrorKindHasItsCode) {
  EXPECT_EQ(ExitCodeForStatus(absl::OkStatus()), 0);
  EXPECT_EQ(ExitCodeForStatus(absl::NotFoundError("")), 3);
  EXPECT_EQ(ExitCodeForStatus(absl::PermissionDeniedError("")), 4);
  EXPECT_EQ(ExitCodeForStatus(absl::InvalidArgumentError("")), 5);
  EXPECT_EQ(ExitCodeForStatus(absl::OutOfRangeError("")), 5);
  EXPECT_EQ(ExitCodeForStatus(absl::ResourceExhaustedError("")), 6);
  EXPECT_EQ(ExitCodeForStatus(absl::DataLossError("")), 7);
  EXPECT_EQ(ExitCodeForStatus(absl::DeadlineExceededError("")), 8);
  EXPECT_EQ(ExitCodeForStatus(absl::UnavailableError("")), 9);
  EXPECT_EQ(ExitCodeForStatus(absl::FailedPreconditionError("")), 10);
  EXPECT_EQ(ExitCodeForStatus(absl::AbortedError("")), 12);
  EXPECT_EQ(ExitCodeForStatus(absl::InternalError("")), 11);
  EXPECT_EQ(ExitCodeForStatus(absl::UnauthenticatedError("")), 11);
  EXPECT_EQ(ExitCodeForStatus(absl::CancelledError("")), 11);
}

TEST(ExitCodeTest, HelpListsEveryCode) {
  std::string help = ExitCodeHelp();
  for (const char* code :
       {"NOT_FOUND", "PERMISSION_DENIED", "INVALID_ARGUMENT",
        "RESOURCE_EXHAUSTED", "DATA_LOSS", "DEADLINE_EXCEEDED", "UNAVAILABLE",
        "FAILED_PRECONDITION", "FAILED"}) {
    EXPECT_NE(help.find(code), std::string::npos) << code;
  }
  for (int code = 0; code <= 12; ++code) {
    EXPECT_NE(help.find(absl::StrCat(code < 10 ? "   " : "  ", code, "  ")),
              std::string::npos)
        << code;
  }
}

}  // namespace
}  // namespace gpumig::cli
