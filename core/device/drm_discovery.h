// DRM discovery: lists the host's DRM devices through libdrm so an operator
// sees what the daemon could bind to (driver, bus id, PCI ids, device nodes).
//
// Read-only: nodes are opened O_RDONLY only to ask the driver for its name and
// version, and closed again. Nothing here is needed to run the daemon on the
// sim backend.
//
// Thread-safe (no shared state).
#ifndef GPUMIG_CORE_DEVICE_DRM_DISCOVERY_H_
#define GPUMIG_CORE_DEVICE_DRM_DISCOVERY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

// libdrm's device description (xf86drm.h); declared here so this header does
// not pull libdrm into its includers.
struct _drmDevice;

namespace gpumig {

struct DrmDeviceInfo {
  // Kernel driver name ("i915", "amdgpu", ...): from DRM_IOCTL_VERSION on an
  // opened node, else from sysfs (/sys/class/drm/<node>/device/driver); empty
  // if neither could be read.
  std::string driver;
  // "pci:DDDD:BB:DD.F", "usb:BBB:DDD", "platform:<name>" or "host1x:<name>".
  std::string bus_id;
  // Device nodes, e.g. "/dev/dri/card0" and "/dev/dri/renderD128"; empty if
  // the device has no such node.
  std::string primary_node;
  std::string render_node;
  // PCI vendor and device id (0 for other buses).
  uint16_t vendor_id = 0, device_id = 0;
  // "major.minor.patchlevel" as the driver reports it; empty if no node could
  // be opened.
  std::string driver_version;
};

// Lists the DRM devices of this host (libdrm drmGetDevices2). A host without
// DRM devices (or without /dev/dri) yields an empty list, not an error.
// Errors: whatever libdrm reports otherwise, mapped from its errno (e.g.
// PERMISSION_DENIED, RESOURCE_EXHAUSTED).
absl::StatusOr<std::vector<DrmDeviceInfo>> DiscoverDrmDevices();

namespace internal {
// Describes one libdrm device. Exposed for tests, which feed it synthetic
// devices; the driver fields are filled only when a node can be opened or its
// sysfs entry read.
DrmDeviceInfo DescribeDrmDevice(const struct _drmDevice& device);
}  // namespace internal

}  // namespace gpumig

#endif  // GPUMIG_CORE_DEVICE_DRM_DISCOVERY_H_
