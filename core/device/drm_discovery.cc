// DRM discovery: see drm_discovery.h.
#include "core/device/drm_discovery.h"

#include <fcntl.h>
#include <unistd.h>
#include <xf86drm.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace gpumig {
namespace {

std::string NodePath(const drmDevice& device, int type) {
  if (device.nodes == nullptr || (device.available_nodes & (1 << type)) == 0 ||
      device.nodes[type] == nullptr) {
    return "";
  }
  return device.nodes[type];
}

std::string BusId(const drmDevice& device) {
  switch (device.bustype) {
    case DRM_BUS_PCI:
      if (device.businfo.pci == nullptr) return "pci";
      return absl::StrFormat("pci:%04x:%02x:%02x.%u",
                             device.businfo.pci->domain,
                             device.businfo.pci->bus, device.businfo.pci->dev,
                             device.businfo.pci->func);
    case DRM_BUS_USB:
      if (device.businfo.usb == nullptr) return "usb";
      return absl::StrFormat("usb:%03u:%03u", device.businfo.usb->bus,
                             device.businfo.usb->dev);
    case DRM_BUS_PLATFORM:
      if (device.businfo.platform == nullptr) return "platform";
      return absl::StrCat("platform:", device.businfo.platform->fullname);
    case DRM_BUS_HOST1X:
      if (device.businfo.host1x == nullptr) return "host1x";
      return absl::StrCat("host1x:", device.businfo.host1x->fullname);
  }
  return absl::StrCat("bus", device.bustype);
}

struct VersionDeleter {
  void operator()(drmVersion* v) const { drmFreeVersion(v); }
};

// Fills driver and driver_version from DRM_IOCTL_VERSION on `node`. False if
// the node cannot be opened or does not answer.
bool QueryVersion(const std::string& node, DrmDeviceInfo* info) {
  if (node.empty()) return false;
  const int fd = open(node.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::unique_ptr<drmVersion, VersionDeleter> version(drmGetVersion(fd));
  close(fd);
  if (version == nullptr) return false;
  if (version->name != nullptr && version->name_len > 0) {
    info->driver.assign(version->name, version->name_len);
  }
  info->driver_version =
      absl::StrCat(version->version_major, ".", version->version_minor, ".",
                   version->version_patchlevel);
  return !info->driver.empty();
}

// The driver's name from sysfs: the basename of the link
// /sys/class/drm/<node basename>/device/driver.
std::string SysfsDriver(const std::string& node) {
  if (node.empty()) return "";
  const size_t slash = node.rfind('/');
  const std::string base =
      slash == std::string::npos ? node : node.substr(slash + 1);
  const std::string link =
      absl::StrCat("/sys/class/drm/", base, "/device/driver");
  char buf[4096];
  const ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  absl::string_view target(buf, static_cast<size_t>(n));
  const size_t pos = target.rfind('/');
  if (pos != absl::string_view::npos) target.remove_prefix(pos + 1);
  return std::string(target);
}

}  // namespace

namespace internal {

DrmDeviceInfo DescribeDrmDevice(const drmDevice& device) {
  DrmDeviceInfo info;
  info.bus_id = BusId(device);
  info.primary_node = NodePath(device, DRM_NODE_PRIMARY);
  info.render_node = NodePath(device, DRM_NODE_RENDER);
  if (device.bustype == DRM_BUS_PCI && device.deviceinfo.pci != nullptr) {
    info.vendor_id = device.deviceinfo.pci->vendor_id;
    info.device_id = device.deviceinfo.pci->device_id;
  }
  // The render node first: it needs no DRM master and is usually open to the
  // render group.
  if (!QueryVersion(info.render_node, &info) &&
      !QueryVersion(info.primary_node, &info)) {
    info.driver = SysfsDriver(info.render_node);
    if (info.driver.empty()) info.driver = SysfsDriver(info.primary_node);
  }
  return info;
}

}  // namespace internal

absl::StatusOr<std::vector<DrmDeviceInfo>> DiscoverDrmDevices() {
  std::vector<DrmDeviceInfo> out;
  const int count = drmGetDevices2(0, nullptr, 0);
  if (count == -ENOENT || count == -ENODEV || count == 0) return out;
  if (count < 0) {
    return absl::Status(absl::ErrnoToStatusCode(-count),
                        absl::StrCat("drmGetDevices2: ", strerror(-count)));
  }
  std::vector<drmDevicePtr> devices(static_cast<size_t>(count), nullptr);
  const int got = drmGetDevices2(0, devices.data(), count);
  if (got == -ENOENT || got == -ENODEV || got == 0) return out;
  if (got < 0) {
    return absl::Status(absl::ErrnoToStatusCode(-got),
                        absl::StrCat("drmGetDevices2: ", strerror(-got)));
  }
  // Devices may have gone away between the two calls; never read past what
  // the second call filled in.
  const int n = got < count ? got : count;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (devices[i] != nullptr) {
      out.push_back(internal::DescribeDrmDevice(*devices[i]));
    }
  }
  drmFreeDevices(devices.data(), n);
  return out;
}

}  // namespace gpumig
