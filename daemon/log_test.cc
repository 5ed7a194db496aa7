#include "daemon/log.h"

#include "gtest/gtest.h"

namespace gpumig {
namespace daemon {
namespace {

TEST(LogTest, FormatsKeyValuePairsAndQuotesWhereNeeded) {
  LogRecord r;
  r.time = absl::FromUnixSeconds(0);
  r.level = LogLevel::kWarn;
  r.event = "quota_refused";
  r.fields = {{"principal", "uid:1000"},
              {"subject", "CN=a b"},
              {"msg", "say \"hi\"\n"},
              {"empty", ""}};
  EXPECT_EQ(FormatLogLine(r),
            "ts=1970-01-01T00:00:00.000000Z level=warn event=quota_refused "
            "principal=uid:1000 subject=\"CN=a b\" msg=\"say \\\"hi\\\"\\n\" "
            "empty=\"\"");
}

TEST(LogTest, LevelsFilterAndParse) {
  EXPECT_EQ(*ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(*ParseLogLevel("error"), LogLevel::kError);
  EXPECT_FALSE(ParseLogLevel("verbose").ok());
  SetLogLevel(LogLevel::kWarn);
  EXPECT_FALSE(LogEnabled(LogLevel::kInfo));
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
  SetLogLevel(LogLevel::kInfo);
}

TEST(LogTest, SinksSeeEveryEmittedLine) {
  int seen = 0;
  AddLogSink([&seen](const LogRecord& r) {
    if (r.event == "sink_test") ++seen;
  });
  Log(LogLevel::kInfo, "sink_test").Kv("n", 1);
  Log(LogLevel::kDebug, "sink_test");  // below the level: dropped
  EXPECT_EQ(seen, 1);
}

}  // namespace
}  // namespace daemon
}  // namespace gpumig
