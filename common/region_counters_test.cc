#include "common/region_counters.h"

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "gtest/gtest.h"

namespace gpumig {
namespace {

// Every field of a fresh set, numbered 1, 2, ... in declaration order.
RegionCounters Numbered() {
  RegionCounters c;
  uint64_t next = 1;
  ForEachRegionCounter([&](uint64_t& v) { v = next++; }, c);
  return c;
}

TEST(RegionCountersTest, TheVisitorReachesEveryFieldOnce) {
  // Adding a field without listing it in ForEachRegionCounter would leave
  // it out of every copy; the struct holds nothing but the counters.
  static_assert(std::is_standard_layout_v<RegionCounters>);
  size_t fields = 0;
  RegionCounters c;
  ForEachRegionCounter([&](uint64_t&) { ++fields; }, c);
  EXPECT_EQ(fields * sizeof(uint64_t), sizeof(RegionCounters));
  const RegionCounters n = Numbered();
  EXPECT_EQ(n.evictions, 1u);
  EXPECT_EQ(n.unknown_state_marks, 7u);
  EXPECT_EQ(n.bytes_migrated_out, 9u);
}

TEST(RegionCountersTest, LiveCountersSnapshotFieldByField) {
  BasicRegionCounters<std::atomic<uint64_t>> live;
  live.blits.fetch_add(3);
  live.unknown_state_marks.fetch_add(1);
  RegionCounters snap;
  ForEachRegionCounter(
      [](uint64_t& out, const std::atomic<uint64_t>& in) { out = in.load(); },
      snap, live);
  RegionCounters want;
  want.blits = 3;
  want.unknown_state_marks = 1;
  EXPECT_EQ(snap, want);
}

TEST(RegionCountersTest, DifferenceAndEquality) {
  const RegionCounters later = Numbered();
  RegionCounters earlier;
  earlier.evictions = 1;
  earlier.bytes_migrated_in = 5;
  const RegionCounters d = later - earlier;
  EXPECT_EQ(d.evictions, 0u);
  EXPECT_EQ(d.blits, 2u);
  EXPECT_EQ(d.bytes_migrated_in, 3u);
  EXPECT_EQ(later - RegionCounters{}, later);
  EXPECT_NE(d, later);
}

}  // namespace
}  // namespace gpumig
