// Self-identifying content for the torture campaign.
//
// Every byte a campaign client writes belongs to a 16-byte *unit* aligned to
// 16 in its object, and a unit says who wrote it:
//
//   bytes  0..3   kUnitMagic ^ low 32 bits of the campaign seed
//   bytes  4..5   client index
//   bytes  6..9   object serial (per client, never reused in a campaign)
//   bytes 10..13  version: the object's write counter at the time
//   bytes 14..15  unit index in the object (offset / 16), low 16 bits
//
// So any bytes a read returns can be traced: zeros, the reader's own current
// data, an older version of the same object (stale), another object of the
// same client, another client's object (foreign), a fill byte, or garbage.
// The checks themselves compare against an exact shadow copy; the decoding
// is for the violation report.
//
// Thread-compatible (pure functions).
#ifndef GPUMIG_TESTS_TORTURE_PATTERN_H_
#define GPUMIG_TESTS_TORTURE_PATTERN_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/types/span.h"

namespace gpumig::torture {

inline constexpr uint64_t kUnitBytes = 16;
inline constexpr uint32_t kUnitMagic = 0x474d5431;  // "GMT1"

// FNV-1a 64 as docs/api.md defines it for ExecChecksum (computed here
// independently of the daemon's code).
inline constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
uint64_t Fnv1a64(absl::Span<const uint8_t> data, uint64_t h = kFnvOffset);

// Who wrote a unit.
struct UnitTag {
  uint32_t client = 0;
  uint32_t object = 0;
  uint32_t version = 0;
  uint32_t unit = 0;  // low 16 bits of offset / 16
};

// Fills `out` with the units of (client, object, version) for the object
// bytes starting at `offset`. offset and out.size() are multiples of
// kUnitBytes.
void FillPattern(uint64_t seed, uint32_t client, uint32_t object,
                 uint32_t version, uint64_t offset, absl::Span<uint8_t> out);

// Decodes a unit written by this campaign (same seed); nullopt otherwise.
std::optional<UnitTag> DecodeUnit(uint64_t seed, const uint8_t* unit);

// A person's description of what a 16-byte unit holds, relative to the
// reader (`client`, `object`, expected `version`): "zeros", "own current
// data", "STALE: own version 3 (expected 5)", "FOREIGN: client 2 object 7
// version 1", "fill 0xab", "garbage 01 02 ...".
std::string DescribeUnit(uint64_t seed, uint32_t client, uint32_t object,
                         const uint8_t* unit);

// The first index where `got` and `want` differ and how many bytes differ in
// all; nullopt if equal. Spans of the same size.
struct Mismatch {
  size_t first = 0;
  size_t count = 0;
};
std::optional<Mismatch> FindMismatch(absl::Span<const uint8_t> got,
                                     absl::Span<const uint8_t> want);

}  // namespace gpumig::torture

#endif  // GPUMIG_TESTS_TORTURE_PATTERN_H_
