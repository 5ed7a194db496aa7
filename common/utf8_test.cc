#include "common/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace gpumig {
namespace {

TEST(Utf8Test, AcceptsWellFormedText) {
  EXPECT_TRUE(IsUtf8(""));
  EXPECT_TRUE(IsUtf8("plain ascii"));
  EXPECT_TRUE(IsUtf8("gr\xc3\xbc\xc3\x9f"));  // grüß
  EXPECT_TRUE(IsUtf8("\xe2\x82\xac"));        // U+20AC
  EXPECT_TRUE(IsUtf8("\xf0\x9f\x98\x80"));    // U+1F600
  EXPECT_TRUE(IsUtf8("\xf4\x8f\xbf\xbf"));    // U+10FFFF
  EXPECT_TRUE(IsUtf8(std::string("nul\0inside", 10)));
}

TEST(Utf8Test, RefusesMalformedText) {
  EXPECT_FALSE(IsUtf8("\xff"));                  // never valid
  EXPECT_FALSE(IsUtf8("\x80"));                  // stray continuation
  EXPECT_FALSE(IsUtf8("\xc3"));                  // truncated at the end
  EXPECT_FALSE(IsUtf8("\xe2\x82"));              // truncated
  EXPECT_FALSE(IsUtf8("\xc3\x28"));              // bad continuation
  EXPECT_FALSE(IsUtf8("\xc0\xaf"));              // overlong '/'
  EXPECT_FALSE(IsUtf8("\xe0\x80\xaf"));          // overlong
  EXPECT_FALSE(IsUtf8("\xed\xa0\x80"));          // surrogate U+D800
  EXPECT_FALSE(IsUtf8("\xf4\x90\x80\x80"));      // past U+10FFFF
  EXPECT_FALSE(IsUtf8("\xf8\x88\x80\x80\x80"));  // 5-byte form
}

TEST(Utf8Test, RefusesEveryBoundaryJustOutsideTheRanges) {
  EXPECT_TRUE(IsUtf8("\x7f"));                       // U+007F, last 1-byte
  EXPECT_TRUE(IsUtf8("\xc2\x80"));                   // U+0080, first 2-byte
  EXPECT_FALSE(IsUtf8("\xc1\xbf"));                  // U+007F overlong
  EXPECT_TRUE(IsUtf8("\xe0\xa0\x80"));               // U+0800, first 3-byte
  EXPECT_FALSE(IsUtf8("\xe0\x9f\xbf"));              // U+07FF overlong
  EXPECT_TRUE(IsUtf8("\xed\x9f\xbf"));               // U+D7FF
  EXPECT_FALSE(IsUtf8("\xed\xbf\xbf"));              // surrogate U+DFFF
  EXPECT_TRUE(IsUtf8("\xee\x80\x80"));               // U+E000
  EXPECT_TRUE(IsUtf8("\xf0\x90\x80\x80"));           // U+10000, first 4-byte
  EXPECT_FALSE(IsUtf8("\xf0\x8f\xbf\xbf"));          // U+FFFF overlong
  EXPECT_FALSE(IsUtf8("\xf5\x80\x80\x80"));          // lead past U+10FFFF
  EXPECT_FALSE(IsUtf8("\xfc\x84\x80\x80\x80\x80"));  // 6-byte form
  EXPECT_FALSE(IsUtf8("ok\xf0\x9f\x98"));            // truncated after text
}

TEST(Utf8SequenceLengthTest, MeasuresEachSequenceInPlace) {
  const std::string s = "a\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80\x80";
  EXPECT_EQ(Utf8SequenceLength(s, 0), 1u);   // 'a'
  EXPECT_EQ(Utf8SequenceLength(s, 1), 2u);   // U+00FC
  EXPECT_EQ(Utf8SequenceLength(s, 2), 0u);   // inside it: a continuation
  EXPECT_EQ(Utf8SequenceLength(s, 3), 3u);   // U+20AC
  EXPECT_EQ(Utf8SequenceLength(s, 6), 4u);   // U+1F600
  EXPECT_EQ(Utf8SequenceLength(s, 10), 0u);  // a stray continuation
  // A sequence cut by the end of the view is not one.
  EXPECT_EQ(Utf8SequenceLength(absl::string_view(s).substr(0, 8), 6), 0u);
}

}  // namespace
}  // namespace gpumig
