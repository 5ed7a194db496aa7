#include "daemon/services/self_test.h"

#include "core/manager/test_util.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace daemon {
namespace {

TEST(SelfTestTest, PassesAndCleansUpWithoutFaults) {
  absl::StatusOr<std::unique_ptr<MemoryManager>> m =
      gpumig::testing::MakeSimManager();
  ASSERT_TRUE(m.ok()) << m.status();
  SelfTestOptions o;
  o.bytes_per_region = 3 << 20;  // More than the 2 MiB aperture.
  absl::StatusOr<SelfTestResult> r = RunSelfTest(**m, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->passed);
  EXPECT_EQ(r->violations, 0u);
  EXPECT_GT(r->canary_bytes_written, 0u);
  EXPECT_GT(r->objects_checked, 0u);
  EXPECT_EQ((*m)->Stats().objects, 0u);
  EXPECT_TRUE((*m)->faults().List().empty());
}

TEST(SelfTestTest, PassesWithFaultsAndDisarmsThem) {
  absl::StatusOr<std::unique_ptr<MemoryManager>> m =
      gpumig::testing::MakeSimManager();
  ASSERT_TRUE(m.ok()) << m.status();
  SelfTestOptions o;
  o.bytes_per_region = 3 << 20;
  o.with_faults = true;
  absl::StatusOr<SelfTestResult> r = RunSelfTest(**m, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->passed) << r->details.size();
  EXPECT_EQ(r->violations, 0u);
  EXPECT_EQ((*m)->Stats().objects, 0u);
  EXPECT_TRUE((*m)->faults().List().empty());
}

TEST(SelfTestTest, StopsWhenCancelled) {
  absl::StatusOr<std::unique_ptr<MemoryManager>> m =
      gpumig::testing::MakeSimManager();
  ASSERT_TRUE(m.ok());
  SelfTestOptions o;
  o.cancelled = [] { return true; };
  absl::StatusOr<SelfTestResult> r = RunSelfTest(**m, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ((*m)->Stats().objects, 0u);
}

}  // namespace
}  // namespace daemon
}  // namespace gpumig
