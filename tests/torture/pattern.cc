#include "tests/torture/pattern.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace gpumig::torture {
namespace {

void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void Put16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
uint32_t Get32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 |
         uint32_t{p[3]} << 24;
}
uint32_t Get16(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8;
}

uint32_t Magic(uint64_t seed) {
  return kUnitMagic ^ static_cast<uint32_t>(seed);
}

}  // namespace

uint64_t Fnv1a64(absl::Span<const uint8_t> data, uint64_t h) {
  for (uint8_t b : data) {
    h ^= b;
    h *= 0x100000001b3ULL;
  }
  return h;
}

void FillPattern(uint64_t seed, uint32_t client, uint32_t object,
                 uint32_t version, uint64_t offset, absl::Span<uint8_t> out) {
  const uint32_t magic = Magic(seed);
  for (size_t i = 0; i + kUnitBytes <= out.size(); i += kUnitBytes) {
    uint8_t* u = out.data() + i;
    Put32(u, magic);
    Put16(u + 4, client);
    Put32(u + 6, object);
    Put32(u + 10, version);
    Put16(u + 14, static_cast<uint32_t>((offset + i) / kUnitBytes));
  }
}

std::optional<UnitTag> DecodeUnit(uint64_t seed, const uint8_t* unit) {
  if (Get32(unit) != Magic(seed)) return std::nullopt;
  UnitTag tag;
  tag.client = Get16(unit + 4);
  tag.object = Get32(unit + 6);
  tag.version = Get32(unit + 10);
  tag.unit = Get16(unit + 14);
  return tag;
}

std::string DescribeUnit(uint64_t seed, uint32_t client, uint32_t object,
                         const uint8_t* unit) {
  bool all_same = true;
  for (size_t i = 1; i < kUnitBytes; ++i) all_same &= unit[i] == unit[0];
  if (all_same) {
    return unit[0] == 0 ? "zeros" : absl::StrFormat("fill 0x%02x", unit[0]);
  }
  if (std::optional<UnitTag> tag = DecodeUnit(seed, unit)) {
    if (tag->client != client) {
      return absl::StrFormat("FOREIGN: client %u object %u version %u unit %u",
                             tag->client, tag->object, tag->version, tag->unit);
    }
    if (tag->object != object) {
      return absl::StrFormat("own object %u version %u unit %u", tag->object,
                             tag->version, tag->unit);
    }
    return absl::StrFormat("own data version %u unit %u", tag->version,
                           tag->unit);
  }
  std::string hex;
  for (size_t i = 0; i < kUnitBytes; ++i) {
    absl::StrAppendFormat(&hex, "%s%02x", i ? " " : "", unit[i]);
  }
  return absl::StrCat("garbage ", hex);
}

std::optional<Mismatch> FindMismatch(absl::Span<const uint8_t> got,
                                     absl::Span<const uint8_t> want) {
  if (got.size() == want.size() &&
      std::memcmp(got.data(), want.data(), got.size()) == 0) {
    return std::nullopt;
  }
  Mismatch m;
  bool found = false;
  const size_t n = std::min(got.size(), want.size());
  for (size_t i = 0; i < n; ++i) {
    if (got[i] != want[i]) {
      if (!found) m.first = i;
      found = true;
      ++m.count;
    }
  }
  if (got.size() != want.size()) {
    if (!found) m.first = n;
    m.count += std::max(got.size(), want.size()) - n;
  }
  return m;
}

}  // namespace gpumig::torture
