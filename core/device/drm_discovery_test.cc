#include "core/device/drm_discovery.h"

#include <xf86drm.h>

#include <cstdio>

#include "gtest/gtest.h"

namespace gpumig {
namespace {

TEST(DrmDiscoveryTest, ReturnsOkAndDescribesEveryDeviceFound) {
  absl::StatusOr<std::vector<DrmDeviceInfo>> devices = DiscoverDrmDevices();
  ASSERT_TRUE(devices.ok()) << devices.status();
  std::printf("%zu DRM device(s)\n", devices->size());
  for (const DrmDeviceInfo& d : *devices) {
    std::printf("  %s driver=%s %s node=%s render=%s %04x:%04x\n",
                d.bus_id.c_str(), d.driver.c_str(), d.driver_version.c_str(),
                d.primary_node.c_str(), d.render_node.c_str(), d.vendor_id,
                d.device_id);
    EXPECT_FALSE(d.bus_id.empty());
    EXPECT_FALSE(d.primary_node.empty() && d.render_node.empty());
    // The driver name comes from the node or from sysfs; one of them is
    // readable for any device libdrm lists.
    EXPECT_FALSE(d.driver.empty()) << d.bus_id;
  }
}

TEST(DrmDiscoveryTest, RepeatedCallsAgree) {
  auto a = DiscoverDrmDevices();
  auto b = DiscoverDrmDevices();
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->size(), b->size());
}

TEST(DrmDiscoveryTest, DescribesASyntheticPciDevice) {
  drmPciBusInfo bus = {};
  bus.domain = 1;
  bus.bus = 3;
  bus.dev = 0x1f;
  bus.func = 2;
  drmPciDeviceInfo pci = {};
  pci.vendor_id = 0x8086;
  pci.device_id = 0x56a0;
  char card[] = "/nonexistent/dri/card7";
  char render[] = "/nonexistent/dri/renderD135";
  char* nodes[DRM_NODE_MAX] = {};
  nodes[DRM_NODE_PRIMARY] = card;
  nodes[DRM_NODE_RENDER] = render;
  drmDevice device = {};
  device.nodes = nodes;
  device.available_nodes = (1 << DRM_NODE_PRIMARY) | (1 << DRM_NODE_RENDER);
  device.bustype = DRM_BUS_PCI;
  device.businfo.pci = &bus;
  device.deviceinfo.pci = &pci;

  DrmDeviceInfo info = internal::DescribeDrmDevice(device);
  EXPECT_EQ(info.bus_id, "pci:0001:03:1f.2");
  EXPECT_EQ(info.primary_node, "/nonexistent/dri/card7");
  EXPECT_EQ(info.render_node, "/nonexistent/dri/renderD135");
  EXPECT_EQ(info.vendor_id, 0x8086);
  EXPECT_EQ(info.device_id, 0x56a0);
  // Neither node exists: no driver information, and no crash.
  EXPECT_EQ(info.driver, "");
  EXPECT_EQ(info.driver_version, "");
}

TEST(DrmDiscoveryTest, NodesNotAvailableAreEmpty) {
  drmPlatformBusInfo bus = {};
  std::snprintf(bus.fullname, sizeof(bus.fullname), "%s", "soc/gpu@1000");
  char card[] = "/nonexistent/dri/card0";
  char* nodes[DRM_NODE_MAX] = {};
  nodes[DRM_NODE_PRIMARY] = card;
  drmDevice device = {};
  device.nodes = nodes;
  device.available_nodes = 1 << DRM_NODE_PRIMARY;
  device.bustype = DRM_BUS_PLATFORM;
  device.businfo.platform = &bus;

  DrmDeviceInfo info = internal::DescribeDrmDevice(device);
  EXPECT_EQ(info.bus_id, "platform:soc/gpu@1000");
  EXPECT_EQ(info.primary_node, "/nonexistent/dri/card0");
  EXPECT_EQ(info.render_node, "");
  EXPECT_EQ(info.vendor_id, 0);
  EXPECT_EQ(info.device_id, 0);
}

}  // namespace
}  // namespace gpumig
