// RegionCounters: a memory region's cumulative counts since the daemon
// started, defined once for every layer that carries them: the core (a
// Region's live counters, MemoryManager::GetRegion's snapshot), the daemon
// (its metrics; gpumig.v1.RegionCounters through daemon/services/convert.h)
// and the client library (RegionInfo::counters).
//
// Every field only grows during one daemon lifetime. "Unknown state" has two
// figures and they are not the same: unknown_state_marks here counts every
// time an object was marked while placed in the region (it never drops);
// how many objects are unknown *now* is RegionInfo::unknown_objects
// (gpumig.v1.Region.unknown_state_objects).
//
// Thread-safety: RegionCounters is a plain value. The Region's live copy,
// BasicRegionCounters<std::atomic<uint64_t>>, may be bumped and read from
// any thread without a lock.
#ifndef GPUMIG_COMMON_REGION_COUNTERS_H_
#define GPUMIG_COMMON_REGION_COUNTERS_H_

#include <cstdint>

namespace gpumig {

template <typename Counter>
struct BasicRegionCounters {
  // Objects moved out of this region to make room or by Evict.
  Counter evictions{0};
  // Copy-engine commands (clear, copy, fill, checksum) touching the region.
  Counter blits{0};
  // Of those, the ones the engine failed or skipped.
  Counter blit_failures{0};
  // Failed copies redone by the failsafe (content exact).
  Counter fallback_copies{0};
  // Failed clears or fills redone by the failsafe (content exact).
  Counter fallback_clears{0};
  // Of fallback_copies and fallback_clears, those the device's independent
  // path took rather than the CPU.
  Counter fallback_device{0};
  // Objects marked unknown state (content lost) while placed in the region.
  Counter unknown_state_marks{0};
  // Bytes copied into / out of the region by migrations and evictions.
  Counter bytes_migrated_in{0};
  Counter bytes_migrated_out{0};
};

using RegionCounters = BasicRegionCounters<uint64_t>;

// Calls fn(c.field...) once per field, the same field of every argument
// together, in declaration order: the one list of the fields, for copies
// and arithmetic over whole counter sets (a snapshot of the live counters,
// the difference of two snapshots).
template <typename Fn, typename... Counters>
void ForEachRegionCounter(Fn&& fn, Counters&&... c) {
  fn(c.evictions...);
  fn(c.blits...);
  fn(c.blit_failures...);
  fn(c.fallback_copies...);
  fn(c.fallback_clears...);
  fn(c.fallback_device...);
  fn(c.unknown_state_marks...);
  fn(c.bytes_migrated_in...);
  fn(c.bytes_migrated_out...);
}

// a - b, field by field (what happened between two snapshots).
inline RegionCounters operator-(const RegionCounters& a,
                                const RegionCounters& b) {
  RegionCounters d;
  ForEachRegionCounter(
      [](uint64_t& out, uint64_t x, uint64_t y) { out = x - y; }, d, a, b);
  return d;
}

inline bool operator==(const RegionCounters& a, const RegionCounters& b) {
  bool equal = true;
  ForEachRegionCounter([&](uint64_t x, uint64_t y) { equal &= x == y; }, a, b);
  return equal;
}
inline bool operator!=(const RegionCounters& a, const RegionCounters& b) {
  return !(a == b);
}

}  // namespace gpumig

#endif  // GPUMIG_COMMON_REGION_COUNTERS_H_
