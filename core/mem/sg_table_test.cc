// SgTable: shared by reference count, blocks back to the region only when
// the last holder lets go (or at once with ReleaseEarly, pipelined
// eviction), and ForEachRange walks a fragmented table's pieces in order.
#include "core/mem/sg_table.h"

#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "core/mem/region.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

constexpr uint64_t kChunk = 4096;

std::unique_ptr<Region> MakeRegion(uint64_t size) {
  RegionConfig c;
  c.name = "lmem";
  c.kind = RegionKind::kLmem;
  c.size = size;
  c.aperture = size / 2;
  c.chunk_size = kChunk;
  auto r = Region::Create(c);
  EXPECT_TRUE(r.ok()) << r.status();
  return *std::move(r);
}

TEST(SgTableTest, BlocksReturnOnlyWhenTheLastHolderDrops) {
  auto region = MakeRegion(64 * kChunk);
  auto table = region->Allocate(8 * kChunk, false);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ((*table)->size(), 8 * kChunk);
  EXPECT_EQ((*table)->region(), region.get());
  SgTableRef object = *table;  // the object's reference
  SgTableRef blit = *table;    // an in-flight blit's reference
  table->reset();
  object.reset();  // the object moved on or was destroyed
  EXPECT_EQ(region->Usage().allocated_bytes, 8 * kChunk)
      << "a blit still holds the table: its blocks must not be reused";
  blit.reset();
  EXPECT_EQ(region->Usage().allocated_bytes, 0u);
  EXPECT_TRUE(region->CheckInvariantsForTest().ok());
}

TEST(SgTableTest, ReleaseEarlyFreesOnceAndTheTableStaysDescribed) {
  auto region = MakeRegion(64 * kChunk);
  SgTableRef t = *region->Allocate(4 * kChunk, false);
  const std::vector<Block> blocks = t->blocks();
  t->ReleaseEarly();
  EXPECT_TRUE(t->released_early());
  EXPECT_EQ(region->Usage().allocated_bytes, 0u);  // free for a new owner
  EXPECT_EQ(t->blocks(), blocks);                  // still readable by the
  EXPECT_EQ(t->size(), 4 * kChunk);                // eviction's own blit
  t->ReleaseEarly();                               // idempotent
  // The new owner gets the blocks; dropping the old table frees nothing.
  SgTableRef next = *region->Allocate(64 * kChunk, false);
  t.reset();
  EXPECT_EQ(region->Usage().allocated_bytes, 64 * kChunk);
  EXPECT_TRUE(region->CheckInvariantsForTest().ok());
  next.reset();
  EXPECT_EQ(region->Usage().allocated_bytes, 0u);
}

TEST(SgTableTest, CpuAccessibleTablesLieInsideTheAperture) {
  auto region = MakeRegion(64 * kChunk);
  SgTableRef t = *region->Allocate(16 * kChunk, /*require_cpu_access=*/true);
  EXPECT_TRUE(t->cpu_accessible());
  for (const Block& b : t->blocks()) {
    EXPECT_LE(b.offset + b.size, region->aperture()) << b.offset;
  }
}

// ForEachRange over random ranges of a fragmented table: the pieces cover
// the range in order, map each byte to the block that holds it, and no two
// consecutive pieces are contiguous in the region (they would be merged).
TEST(SgTableTest, ForEachRangeMapsEveryByteOfAFragmentedTable) {
  const uint64_t seed = std::random_device{}();
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  auto region = MakeRegion(64 * kChunk);
  // Fragment: take every chunk, free every third, then allocate over the
  // holes.
  std::vector<SgTableRef> singles;
  for (int i = 0; i < 64; ++i) singles.push_back(*region->Allocate(kChunk, 0));
  for (int i = 0; i < 64; i += 3) singles[i].reset();
  for (int i = 1; i < 64; i += 9) singles[i].reset();
  const uint64_t free = region->Usage().free_bytes;
  SgTableRef t = *region->Allocate(free, false);
  ASSERT_GT(t->blocks().size(), 1u) << "not fragmented";
  // Byte i of the table lives at region offset where[i / kChunk] + i % kChunk.
  std::vector<uint64_t> where;
  for (const Block& b : t->blocks()) {
    for (uint64_t o = 0; o < b.size; o += kChunk) where.push_back(b.offset + o);
  }
  for (int iter = 0; iter < 500; ++iter) {
    const uint64_t offset = rng() % t->size();
    const uint64_t length = rng() % (t->size() - offset + 1);
    uint64_t next_table = offset, covered = 0;
    uint64_t prev_end = ~uint64_t{0};
    t->ForEachRange(
        offset, length,
        [&](uint64_t region_off, uint64_t len, uint64_t table_off) {
          ASSERT_GT(len, 0u);
          ASSERT_EQ(table_off, next_table) << "seed " << seed;
          ASSERT_NE(region_off, prev_end) << "adjacent pieces not merged";
          for (uint64_t k = 0; k < len; k += kChunk / 4) {
            const uint64_t i = table_off + k;
            ASSERT_EQ(region_off + k, where[i / kChunk] + i % kChunk)
                << "seed " << seed << " byte " << i;
          }
          prev_end = region_off + len;
          next_table += len;
          covered += len;
        });
    ASSERT_EQ(covered, length) << "seed " << seed;
  }
}

}  // namespace
}  // namespace gpumig
