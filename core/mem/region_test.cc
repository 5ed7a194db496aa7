#include "core/mem/region.h"

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "core/fence/fence.h"
#include "core/mem/sg_table.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

RegionConfig Lmem(uint64_t size, uint64_t aperture) {
  RegionConfig c;
  c.name = "lmem";
  c.kind = RegionKind::kLmem;
  c.size = size;
  c.aperture = aperture;
  return c;
}

RegionConfig Smem(uint64_t size) {
  RegionConfig c;
  c.name = "smem";
  c.kind = RegionKind::kSmem;
  c.size = size;
  c.aperture = size;
  return c;
}

std::unique_ptr<Region> MustCreate(RegionConfig config) {
  auto region = Region::Create(std::move(config));
  EXPECT_TRUE(region.ok()) << region.status();
  return region.ok() ? *std::move(region) : nullptr;
}

void ExpectInvalid(RegionConfig config) {
  auto region = Region::Create(config);
  EXPECT_EQ(region.status().code(), absl::StatusCode::kInvalidArgument)
      << config.name << " size=" << config.size
      << " aperture=" << config.aperture << " chunk=" << config.chunk_size;
}

TEST(RegionTest, CreateRejectsBadConfigs) {
  RegionConfig c = Lmem(1 * kMiB, 256 * kKiB);
  c.name = "";
  ExpectInvalid(c);

  ExpectInvalid(Lmem(0, 0));
  ExpectInvalid(Lmem(1 * kMiB + 1, 0));             // size not a chunk multiple
  ExpectInvalid(Lmem(1 * kMiB, 2 * kMiB));          // aperture > size
  ExpectInvalid(Lmem(1 * kMiB, 256 * kKiB + 512));  // aperture not a multiple

  c = Lmem(1 * kMiB, 256 * kKiB);
  c.chunk_size = 3000;  // not a power of two
  ExpectInvalid(c);
  c.chunk_size = 0;
  ExpectInvalid(c);

  c = Smem(1 * kMiB);
  c.aperture = 512 * kKiB;  // SMEM is CPU-visible in full
  ExpectInvalid(c);
}

TEST(RegionTest, SmemApertureDefaultsToSize) {
  RegionConfig c = Smem(1 * kMiB);
  c.aperture = 0;
  std::unique_ptr<Region> region = MustCreate(c);
  ASSERT_NE(region, nullptr);
  EXPECT_EQ(region->aperture(), 1 * kMiB);
  EXPECT_EQ(region->kind(), RegionKind::kSmem);
  EXPECT_EQ(RegionKindName(region->kind()), "smem");
  EXPECT_EQ(RegionKindName(RegionKind::kLmem), "lmem");
}

TEST(RegionTest, AllocateRejectsBadSizes) {
  std::unique_ptr<Region> region = MustCreate(Lmem(1 * kMiB, 256 * kKiB));
  ASSERT_NE(region, nullptr);
  EXPECT_EQ(region->Allocate(0, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(region->Allocate(2 * kMiB, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(region->Allocate(512 * kKiB, true).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(region->CheckInvariantsForTest().ok());
  EXPECT_EQ(region->Usage().allocated_bytes, 0u);
}

TEST(RegionTest, AllocationRoundsUpToChunk) {
  std::unique_ptr<Region> region = MustCreate(Smem(1 * kMiB));
  ASSERT_NE(region, nullptr);
  auto table = region->Allocate(5000, false);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ((*table)->size(), 8 * kKiB);
  EXPECT_EQ((*table)->region(), region.get());
  EXPECT_EQ(region->Usage().allocated_bytes, 8 * kKiB);
}

TEST(RegionTest, CpuAccessAllocationsStayInsideTheAperture) {
  std::unique_ptr<Region> region = MustCreate(Lmem(1 * kMiB, 256 * kKiB));
  ASSERT_NE(region, nullptr);
  EXPECT_EQ(region->FreeBytes(true), 256 * kKiB);
  EXPECT_EQ(region->FreeBytes(false), 1 * kMiB);

  std::vector<SgTableRef> tables;
  for (int i = 0; i < 4; ++i) {
    auto t = region->Allocate(64 * kKiB, true);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_TRUE((*t)->cpu_accessible());
    for (const Block& b : (*t)->blocks()) {
      EXPECT_LE(b.offset + b.size, 256 * kKiB);
    }
    tables.push_back(*t);
  }
  // The aperture is full; more CPU-accessible memory is exhausted for now,
  // while the rest of the region still has room.
  EXPECT_EQ(region->FreeBytes(true), 0u);
  EXPECT_EQ(region->Allocate(4 * kKiB, true).status().code(),
            absl::StatusCode::kResourceExhausted);
  auto outside = region->Allocate(64 * kKiB, false);
  ASSERT_TRUE(outside.ok()) << outside.status();
  EXPECT_FALSE((*outside)->cpu_accessible());
  for (const Block& b : (*outside)->blocks()) {
    EXPECT_GE(b.offset, 256 * kKiB);
  }
  RegionUsage u = region->Usage();
  EXPECT_EQ(u.free_aperture_bytes, 0u);
  EXPECT_EQ(u.tables, 5u);
  EXPECT_TRUE(region->CheckInvariantsForTest().ok());
}

TEST(RegionTest, ApertureZeroLmemIsNeverCpuAccessible) {
  std::unique_ptr<Region> region = MustCreate(Lmem(1 * kMiB, 0));
  ASSERT_NE(region, nullptr);
  EXPECT_EQ(region->Allocate(4 * kKiB, true).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto t = region->Allocate(4 * kKiB, false);
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE((*t)->cpu_accessible());
  EXPECT_EQ(region->Usage().free_aperture_bytes, 0u);
}

TEST(RegionTest, ExhaustionIsResourceExhaustedAndRecovers) {
  std::unique_ptr<Region> region = MustCreate(Smem(256 * kKiB));
  ASSERT_NE(region, nullptr);
  auto a = region->Allocate(256 * kKiB, false);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(region->Allocate(4 * kKiB, false).status().code(),
            absl::StatusCode::kResourceExhausted);
  a->reset();
  EXPECT_TRUE(region->Allocate(4 * kKiB, false).ok());
}

TEST(RegionTest, LruOrder) {
  std::unique_ptr<Region> region = MustCreate(Smem(1 * kMiB));
  ASSERT_NE(region, nullptr);
  EXPECT_TRUE(region->LruSnapshot().empty());
  region->LruTouch(1);
  region->LruTouch(2);
  region->LruTouch(3);
  EXPECT_EQ(region->LruSnapshot(), (std::vector<uint64_t>{1, 2, 3}));
  region->LruTouch(1);  // most recently used now
  EXPECT_EQ(region->LruSnapshot(), (std::vector<uint64_t>{2, 3, 1}));
  region->LruTouch(1);  // already at the end: no change, no duplicate
  EXPECT_EQ(region->LruSnapshot(), (std::vector<uint64_t>{2, 3, 1}));
  region->LruRemove(3);
  EXPECT_EQ(region->LruSnapshot(), (std::vector<uint64_t>{2, 1}));
  region->LruRemove(42);  // absent: ignored
  EXPECT_EQ(region->LruSnapshot(), (std::vector<uint64_t>{2, 1}));
  region->LruRemove(2);
  region->LruRemove(1);
  EXPECT_TRUE(region->LruSnapshot().empty());
  EXPECT_TRUE(region->CheckInvariantsForTest().ok());
}

TEST(RegionTest, SgTableReturnsBlocksOnLastReference) {
  std::unique_ptr<Region> region = MustCreate(Smem(1 * kMiB));
  ASSERT_NE(region, nullptr);
  auto t = region->Allocate(128 * kKiB, false);
  ASSERT_TRUE(t.ok());
  SgTableRef owner = *std::move(t);
  SgTableRef in_flight_blit = owner;  // a second holder
  EXPECT_EQ(region->Usage().allocated_bytes, 128 * kKiB);

  owner.reset();
  // The blit still holds the table: nothing goes back yet.
  EXPECT_EQ(region->Usage().allocated_bytes, 128 * kKiB);
  EXPECT_EQ(region->Usage().tables, 1u);
  EXPECT_EQ(region->FreeBytes(false), 1 * kMiB - 128 * kKiB);

  in_flight_blit.reset();
  EXPECT_EQ(region->Usage().allocated_bytes, 0u);
  EXPECT_EQ(region->Usage().tables, 0u);
  EXPECT_TRUE(region->CheckInvariantsForTest().ok());
}

TEST(RegionTest, ReleaseEarlyFreesNowAndOnlyOnce) {
  std::unique_ptr<Region> region = MustCreate(Smem(256 * kKiB));
  ASSERT_NE(region, nullptr);
  auto t = region->Allocate(256 * kKiB, false);
  ASSERT_TRUE(t.ok());
  SgTableRef evicted = *std::move(t);
  const std::vector<Block> blocks = evicted->blocks();
  EXPECT_FALSE(evicted->released_early());

  evicted->ReleaseEarly();
  EXPECT_TRUE(evicted->released_early());
  // Blocks are back, but the table still describes them for the eviction
  // blit and its failsafe.
  EXPECT_EQ(region->Usage().allocated_bytes, 0u);
  EXPECT_EQ(region->Usage().tables, 0u);
  EXPECT_EQ(evicted->blocks(), blocks);
  EXPECT_EQ(evicted->size(), 256 * kKiB);

  evicted->ReleaseEarly();  // idempotent

  // The next owner may take the same blocks at once.
  auto next = region->Allocate(256 * kKiB, false);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ((*next)->blocks(), blocks);

  // Dropping the early-released table must not free the new owner's blocks.
  evicted.reset();
  EXPECT_EQ(region->Usage().allocated_bytes, 256 * kKiB);
  EXPECT_TRUE(region->CheckInvariantsForTest().ok());
  next->reset();
  EXPECT_EQ(region->Usage().allocated_bytes, 0u);
  EXPECT_TRUE(region->CheckInvariantsForTest().ok());
}

TEST(RegionTest, UsageAccountingReturnsToZero) {
  std::unique_ptr<Region> region = MustCreate(Lmem(4 * kMiB, 1 * kMiB));
  ASSERT_NE(region, nullptr);
  const RegionUsage empty = region->Usage();
  EXPECT_EQ(empty.allocated_bytes, 0u);
  EXPECT_EQ(empty.free_bytes, 4 * kMiB);
  EXPECT_EQ(empty.free_aperture_bytes, 1 * kMiB);
  EXPECT_EQ(empty.largest_free_block, 4 * kMiB);
  EXPECT_EQ(empty.tables, 0u);

  std::vector<SgTableRef> tables;
  uint64_t total = 0;
  for (uint64_t size : {4 * kKiB, 12 * kKiB, 100 * kKiB, 1 * kMiB, 8 * kKiB}) {
    auto t = region->Allocate(size, size == 12 * kKiB);
    ASSERT_TRUE(t.ok()) << t.status();
    total += (*t)->size();
    tables.push_back(*t);
    RegionUsage u = region->Usage();
    EXPECT_EQ(u.allocated_bytes, total);
    EXPECT_EQ(u.allocated_bytes + u.free_bytes, 4 * kMiB);
    EXPECT_EQ(u.tables, tables.size());
    EXPECT_TRUE(region->CheckInvariantsForTest().ok());
  }
  // Free in a different order than allocated.
  for (size_t i : {3u, 0u, 4u, 1u, 2u}) {
    tables[i].reset();
    EXPECT_TRUE(region->CheckInvariantsForTest().ok());
  }
  const RegionUsage after = region->Usage();
  EXPECT_EQ(after.allocated_bytes, 0u);
  EXPECT_EQ(after.free_bytes, 4 * kMiB);
  EXPECT_EQ(after.free_aperture_bytes, 1 * kMiB);
  EXPECT_EQ(after.largest_free_block, 4 * kMiB);
  EXPECT_EQ(after.tables, 0u);
}

TEST(RegionTest, PendingEvictionFenceTracksTheTimeline) {
  std::unique_ptr<Region> region = MustCreate(Smem(1 * kMiB));
  ASSERT_NE(region, nullptr);
  EXPECT_EQ(region->PendingEvictionFence(), nullptr);
  Timeline::Link first = region->eviction_timeline().Append("evict-1");
  Timeline::Link second = region->eviction_timeline().Append("evict-2");
  EXPECT_EQ(region->PendingEvictionFence(), second.fence);
  ASSERT_TRUE(first.fence->Signal().ok());
  ASSERT_TRUE(second.fence->Signal().ok());
  EXPECT_EQ(region->PendingEvictionFence(), nullptr);
}

TEST(RegionTest, ForEachRangeMergesAdjacentBlocks) {
  std::unique_ptr<Region> region = MustCreate(Smem(1 * kMiB));
  ASSERT_NE(region, nullptr);
  // 12 KiB on an empty region: 8 KiB + 4 KiB, adjacent.
  auto t = region->Allocate(12 * kKiB, false);
  ASSERT_TRUE(t.ok());
  const SgTable& table = **t;
  struct Piece {
    uint64_t region_offset, length, table_offset;
  };
  std::vector<Piece> pieces;
  table.ForEachRange(1 * kKiB, 10 * kKiB,
                     [&](uint64_t ro, uint64_t len, uint64_t to) {
                       pieces.push_back({ro, len, to});
                     });
  uint64_t covered = 0;
  uint64_t expect_table = 1 * kKiB;
  for (const Piece& p : pieces) {
    EXPECT_EQ(p.table_offset, expect_table);
    expect_table += p.length;
    covered += p.length;
  }
  EXPECT_EQ(covered, 10 * kKiB);
  bool adjacent = true;
  for (size_t i = 1; i < table.blocks().size(); ++i) {
    const Block& prev = table.blocks()[i - 1];
    adjacent &= prev.offset + prev.size == table.blocks()[i].offset;
  }
  if (adjacent) {
    EXPECT_EQ(pieces.size(), 1u);
  }
}

}  // namespace
}  // namespace gpumig
