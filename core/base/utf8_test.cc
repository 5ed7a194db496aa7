#include "core/base/utf8.h"

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

}  // namespace
}  // namespace gpumig
