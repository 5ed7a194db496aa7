#include "client/cli_format.h"

#include <cstdint>
#include <string>

#include "gtest/gtest.h"

namespace gpumig::cli {
namespace {

TEST(FormatSizeTest, BinaryUnits) {
  EXPECT_EQ(FormatSize(0), "0 B");
  EXPECT_EQ(FormatSize(1023), "1023 B");
  EXPECT_EQ(FormatSize(1024), "1 KiB");
  EXPECT_EQ(FormatSize(1536), "1.5 KiB");
  EXPECT_EQ(FormatSize(4096), "4 KiB");
  EXPECT_EQ(FormatSize(64ull << 20), "64 MiB");
  EXPECT_EQ(FormatSize(3ull << 29), "1.5 GiB");
  EXPECT_EQ(FormatSize(2ull << 40), "2 TiB");
  EXPECT_EQ(FormatSize(5000ull << 40), "5000 TiB");
}

TEST(FormatNanosTest, TruncatesToReadablePrecision) {
  EXPECT_EQ(FormatNanos(0), "0");
  EXPECT_EQ(FormatNanos(999), "999ns");
  EXPECT_EQ(FormatNanos(126'554'321), "126.554ms");
  EXPECT_EQ(FormatNanos(1'234'567), "1.234ms");
  EXPECT_EQ(FormatNanos(993'249'184), "993.249ms");
  EXPECT_EQ(FormatNanos(3'723'500'000'000), "1h2m3s");
  EXPECT_EQ(FormatNanos(-1'500'000'000), "-1.5s");
}

TEST(FormatUnixNanosTest, UtcWithMillis) {
  EXPECT_EQ(FormatUnixNanos(0), "-");
  EXPECT_EQ(FormatUnixNanos(1'000'000'000'123'456'789),
            "2001-09-09T01:46:40.123Z");
}

TEST(TableTest, AlignsColumnsAndTrimsTrailingSpace) {
  Table t({"NAME", "SIZE", "NOTE"}, {false, true, false});
  t.AddRow({"lmem", "64 MiB", ""});
  t.AddRow({"smem-long", "4 KiB", "x"});
  EXPECT_EQ(t.Render(),
            "NAME         SIZE  NOTE\n"
            "lmem       64 MiB\n"
            "smem-long   4 KiB  x\n");
}

TEST(TableTest, ShortRowsArePadded) {
  Table t({"A", "B"});
  t.AddRow({"1"});
  EXPECT_EQ(t.Render(), "A  B\n1\n");
  EXPECT_EQ(t.rows(), 1u);
}

TEST(KeyValueBlockTest, AlignsValues) {
  KeyValueBlock kv;
  kv.Add("fence", "7");
  kv.Add("outcome", "BLIT_OK");
  EXPECT_EQ(kv.Render(), "fence    7\noutcome  BLIT_OK\n");
}

TEST(JsonTest, ObjectWithNestedValues) {
  JsonWriter w;
  w.BeginObject();
  w.Field("handle", "obj-1");
  w.FieldUint("size", 18446744073709551615ull);
  w.FieldInt("neg", -3);
  w.FieldBool("ok", true);
  w.FieldStrings("placements", {"lmem", "smem"});
  w.Key("fence");
  w.Null();
  w.Key("empty");
  w.BeginArray();
  w.EndArray();
  w.Key("nested");
  w.BeginObject();
  w.FieldDouble("p", 0.5);
  w.EndObject();
  w.EndObject();
  EXPECT_EQ(w.str(),
            "{\"handle\":\"obj-1\",\"size\":18446744073709551615,\"neg\":-3,"
            "\"ok\":true,\"placements\":[\"lmem\",\"smem\"],\"fence\":null,"
            "\"empty\":[],\"nested\":{\"p\":0.5}}");
}

TEST(JsonTest, ArrayOfObjects) {
  JsonWriter w;
  w.BeginArray();
  for (int i = 0; i < 2; ++i) {
    w.BeginObject();
    w.FieldInt("i", i);
    w.EndObject();
  }
  w.EndArray();
  EXPECT_EQ(w.str(), "[{\"i\":0},{\"i\":1}]");
}

TEST(JsonQuoteTest, EscapesControlAndQuotes) {
  EXPECT_EQ(JsonQuote("a\"b\\c\n\t\x01"), "\"a\\\"b\\\\c\\n\\t\\u0001\"");
}

TEST(JsonQuoteTest, KeepsValidUtf8AndEscapesInvalidBytes) {
  EXPECT_EQ(JsonQuote("gr\xc3\xbc\xc3\x9f"), "\"gr\xc3\xbc\xc3\x9f\"");
  EXPECT_EQ(JsonQuote("\xff"), "\"\\u00ff\"");
  // Truncated sequence and overlong encoding.
  EXPECT_EQ(JsonQuote("\xc3"), "\"\\u00c3\"");
  EXPECT_EQ(JsonQuote("\xc0\x80"), "\"\\u00c0\\u0080\"");
}

}  // namespace
}  // namespace gpumig::cli
