// Device helpers shared by every backend: see device.h.
#include "core/device/device.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace gpumig {

absl::StatusOr<Region*> Device::FindRegion(absl::string_view name) const {
  for (Region* region : regions()) {
    if (region->name() == name) return region;
  }
  return absl::NotFoundError(absl::StrCat("no region named \"", name, "\""));
}

void CopySpans(const std::vector<absl::Span<uint8_t>>& to,
               const std::vector<absl::Span<uint8_t>>& from) {
  // The two lists cover the same bytes with different piece boundaries: walk
  // both, copying up to the nearer boundary each step.
  size_t i = 0, j = 0;
  uint64_t in_src = 0, in_dst = 0;
  while (i < from.size() && j < to.size()) {
    const absl::Span<uint8_t> s = from[i];
    const absl::Span<uint8_t> d = to[j];
    const uint64_t n = std::min<uint64_t>(s.size() - in_src, d.size() - in_dst);
    // memmove: a table copied onto itself may overlap.
    memmove(d.data() + in_dst, s.data() + in_src, n);
    in_src += n;
    in_dst += n;
    if (in_src == s.size()) {
      ++i;
      in_src = 0;
    }
    if (in_dst == d.size()) {
      ++j;
      in_dst = 0;
    }
  }
}

absl::Status CpuCopy(Device& device, const SgTable& src, uint64_t src_offset,
                     const SgTable& dst, uint64_t dst_offset, uint64_t length) {
  absl::StatusOr<std::vector<absl::Span<uint8_t>>> from =
      device.CpuMap(src, src_offset, length);
  if (!from.ok()) return from.status();
  absl::StatusOr<std::vector<absl::Span<uint8_t>>> to =
      device.CpuMap(dst, dst_offset, length);
  if (!to.ok()) return to.status();

  CopySpans(*to, *from);
  return absl::OkStatus();
}

absl::Status CpuFill(Device& device, const SgTable& dst, uint64_t offset,
                     uint64_t length, uint8_t value) {
  absl::StatusOr<std::vector<absl::Span<uint8_t>>> to =
      device.CpuMap(dst, offset, length);
  if (!to.ok()) return to.status();
  for (absl::Span<uint8_t> piece : *to) {
    memset(piece.data(), value, piece.size());
  }
  return absl::OkStatus();
}

}  // namespace gpumig
