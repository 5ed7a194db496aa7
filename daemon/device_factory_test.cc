#include "daemon/device_factory.h"

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

TEST(DeviceFactoryTest, CudaIsNotAvailableInThisBuild) {
  Config config;
  config.backend = "cuda";
  FaultInjector faults;
  absl::StatusOr<std::unique_ptr<Device>> d = MakeDevice(config, &faults);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(d.status().message(),
            "backend cuda: not available in this build / no GPU");
}

}  // namespace
}  // namespace daemon
}  // namespace gpumig
