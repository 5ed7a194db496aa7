#include "daemon/services/handles.h"

#include <string>

#include "gtest/gtest.h"

namespace gpumig {
namespace daemon {
namespace {

TEST(HandlesTest, RoundTrips) {
  for (uint64_t id : {uint64_t{1}, uint64_t{42}, ~uint64_t{0}}) {
    absl::StatusOr<uint64_t> back = ParseHandle("handle", FormatHandle(id));
    ASSERT_TRUE(back.ok()) << id;
    EXPECT_EQ(*back, id);
  }
  EXPECT_EQ(FormatHandle(7), "obj-7");
}

TEST(HandlesTest, EmptyHandleIsRequired) {
  absl::StatusOr<uint64_t> id = ParseHandle("fill.handle", "");
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(id.status().message(), "fill.handle: required");
}

TEST(HandlesTest, AnythingElseIsMalformed) {
  const std::string too_long = "obj-" + std::string(70, '1');
  for (const std::string& bad :
       {std::string("obj-"), std::string("obj-0"), std::string("obj-01"),
        std::string("obj--1"), std::string("obj-+1"), std::string("obj-1 "),
        std::string(" obj-1"), std::string("OBJ-1"), std::string("obj-1a"),
        std::string("obj-18446744073709551616"), std::string("0x10"),
        std::string("obj-\0001", 6), std::string("1"), too_long,
        std::string("obj-999999999999999999999")}) {
    absl::StatusOr<uint64_t> id = ParseHandle("handle", bad);
    ASSERT_FALSE(id.ok()) << bad;
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(id.status().message(), "handle: malformed handle") << bad;
  }
}

TEST(HandlesTest, PageTokensRememberAllPrincipals) {
  const std::string t = FormatPageToken(true, 99);
  EXPECT_EQ(*ParsePageToken(t, true), 99u);
  absl::StatusOr<uint64_t> other = ParsePageToken(t, false);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument);
  for (const char* bad : {"x", "p0-", "p2-5", "p0-05", "p0_5", "p0-5x"}) {
    absl::StatusOr<uint64_t> v = ParsePageToken(bad, false);
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace daemon
}  // namespace gpumig
