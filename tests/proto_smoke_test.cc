#include "gpumig/v1/common.pb.h"
#include "gtest/gtest.h"

TEST(ProtoTest, EmptyRoundTrips) {
  gpumig::v1::Empty e;
  std::string s;
  ASSERT_TRUE(e.SerializeToString(&s));
  EXPECT_TRUE(e.ParseFromString(s));
}
