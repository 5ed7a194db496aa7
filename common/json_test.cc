#include "common/json.h"

#include <string>

#include "gtest/gtest.h"

namespace gpumig {
namespace {

TEST(JsonEscapeTest, QuotesBackslashesAndNamedControls) {
  EXPECT_EQ(JsonEscape(""), "");
  EXPECT_EQ(JsonEscape("plain"), "plain");
  EXPECT_EQ(JsonEscape("a\"b\\c"), "a\\\"b\\\\c");
  EXPECT_EQ(JsonEscape("l1\nl2\r\tx"), "l1\\nl2\\r\\tx");
}

TEST(JsonEscapeTest, OtherControlCharactersAndDelAsUnicodeEscapes) {
  EXPECT_EQ(JsonEscape(std::string("\0", 1)), "\\u0000");
  EXPECT_EQ(JsonEscape("\x01\x1f\x7f"), "\\u0001\\u001f\\u007f");
  EXPECT_EQ(JsonEscape("\b\f"), "\\u0008\\u000c");
}

TEST(JsonEscapeTest, Utf8PassesAndStrayBytesStayVisible) {
  EXPECT_EQ(JsonEscape("gr\xc3\xbc\xc3\x9f \xf0\x9f\x98\x80"),
            "gr\xc3\xbc\xc3\x9f \xf0\x9f\x98\x80");
  // Not UTF-8: each byte as its Latin-1 code point, so the output is valid.
  EXPECT_EQ(JsonEscape("\xff"), "\\u00ff");
  EXPECT_EQ(JsonEscape("a\xc3"), "a\\u00c3");  // truncated sequence
  EXPECT_EQ(JsonEscape("\xed\xa0\x80"), "\\u00ed\\u00a0\\u0080");  // surrogate
}

TEST(JsonQuoteTest, AddsTheQuotes) {
  EXPECT_EQ(JsonQuote(""), "\"\"");
  EXPECT_EQ(JsonQuote("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
}

}  // namespace
}  // namespace gpumig
