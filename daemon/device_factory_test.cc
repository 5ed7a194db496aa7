#include "daemon/device_factory.h"

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace daemon {
namespace {

TEST(DeviceFactoryTest, SimBuildsTheConfiguredRegions) {
  Config config;
  config.regions = {{"lmem", true, 8 << 20, 2 << 20},
                    {"smem", false, 4 << 20, 4 << 20}};
  FaultInjector faults;
  absl::StatusOr<std::unique_ptr<Device>> d = MakeDevice(config, &faults);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->backend(), "sim");
  ASSERT_EQ((*d)->regions().size(), 2u);
  EXPECT_EQ((*d)->regions()[0]->aperture(), 2u << 20);
}

TEST(DeviceFactoryTest, CudaNeedsOneLmemAndOneSmemRegion) {
  Config config;
  config.backend = "cuda";
  config.regions = {{"lmem", true, 64 << 20, 0}};
  FaultInjector faults;
  absl::StatusOr<std::unique_ptr<Device>> d = MakeDevice(config, &faults);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DeviceFactoryTest, CudaWithoutGpuIsRefusedClearly) {
  Config config;
  config.backend = "cuda";
  config.regions = {{"lmem", true, 64 << 20, 0},
                    {"smem", false, 64 << 20, 64 << 20}};
  FaultInjector faults;
  absl::StatusOr<std::unique_ptr<Device>> d = MakeDevice(config, &faults);
  if (d.ok()) GTEST_SKIP() << "a GPU is present: " << (*d)->description();
  EXPECT_EQ(d.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StartsWith(d.status().message(), "backend cuda: "))
      << d.status();
}

}  // namespace
}  // namespace daemon
}  // namespace gpumig
