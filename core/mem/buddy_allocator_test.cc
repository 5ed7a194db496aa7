#include "core/mem/buddy_allocator.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

using ::testing::ElementsAre;

constexpr uint64_t kKiB = uint64_t{1} << 10;
constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

std::unique_ptr<BuddyAllocator> MakeAllocator(uint64_t size,
                                              uint64_t chunk = 4 * kKiB) {
  absl::StatusOr<std::unique_ptr<BuddyAllocator>> a =
      BuddyAllocator::Create(size, chunk);
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? std::move(a).value() : nullptr;
}

BuddyAllocator::Request Req(uint64_t size, uint64_t start = 0, uint64_t end = 0,
                            bool contiguous = false) {
  BuddyAllocator::Request r;
  r.size = size;
  r.range_start = start;
  r.range_end = end;
  r.contiguous = contiguous;
  return r;
}

std::vector<Block> MustAllocate(BuddyAllocator& a,
                                const BuddyAllocator::Request& r) {
  absl::StatusOr<std::vector<Block>> blocks = a.Allocate(r);
  EXPECT_TRUE(blocks.ok()) << blocks.status();
  EXPECT_TRUE(a.CheckInvariantsForTest().ok()) << a.CheckInvariantsForTest();
  return blocks.ok() ? *blocks : std::vector<Block>{};
}

uint64_t Total(const std::vector<Block>& blocks) {
  uint64_t total = 0;
  for (const Block& b : blocks) total += b.size;
  return total;
}

// A snapshot of everything observable, to show a failed call changed nothing.
struct Snapshot {
  uint64_t free_bytes;
  uint64_t largest;
  std::vector<uint64_t> free_per_slice;

  static Snapshot Of(const BuddyAllocator& a) {
    Snapshot s{a.free_bytes(), a.largest_free_block(), {}};
    const uint64_t slice = std::max(a.chunk_size(), a.size() / 64);
    for (uint64_t off = 0; off < a.size(); off += slice) {
      s.free_per_slice.push_back(
          a.free_bytes_in_range(off, std::min(a.size(), off + slice)));
    }
    return s;
  }
  bool operator==(const Snapshot& o) const {
    return free_bytes == o.free_bytes && largest == o.largest &&
           free_per_slice == o.free_per_slice;
  }
};

TEST(BuddyAllocatorCreateTest, RejectsZeroSize) {
  EXPECT_EQ(BuddyAllocator::Create(0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BuddyAllocatorCreateTest, RejectsChunkNotPowerOfTwoOrBelow4K) {
  EXPECT_EQ(BuddyAllocator::Create(kMiB, 2048).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BuddyAllocator::Create(kMiB, 6144).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BuddyAllocator::Create(kMiB, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BuddyAllocatorCreateTest, RejectsSizeBelowChunk) {
  EXPECT_EQ(BuddyAllocator::Create(60 * kKiB, 64 * kKiB).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BuddyAllocatorCreateTest, RejectsTooManyChunksForNodeIds) {
  EXPECT_EQ(BuddyAllocator::Create(uint64_t{8} << 40, 4 * kKiB).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A larger chunk makes the same region acceptable.
  EXPECT_TRUE(BuddyAllocator::Create(uint64_t{8} << 40, 64 * kKiB).ok());
}

TEST(BuddyAllocatorCreateTest, RoundsSizeDownToChunk) {
  auto a = MakeAllocator(64 * kKiB + 100);
  EXPECT_EQ(a->size(), 64 * kKiB);
  EXPECT_EQ(a->chunk_size(), 4 * kKiB);
  EXPECT_EQ(a->free_bytes(), 64 * kKiB);
  EXPECT_TRUE(a->CheckInvariantsForTest().ok());
}

TEST(BuddyAllocatorTest, FreshPowerOfTwoRegionIsOneFreeRoot) {
  auto a = MakeAllocator(16 * kGiB);
  EXPECT_EQ(a->free_bytes(), 16 * kGiB);
  EXPECT_EQ(a->largest_free_block(), 16 * kGiB);
  EXPECT_EQ(a->largest_root(), 16 * kGiB);
  EXPECT_TRUE(a->CheckInvariantsForTest().ok()) << a->CheckInvariantsForTest();
}

TEST(BuddyAllocatorTest, NonPowerOfTwoRegionBecomesRootsLargestFirst) {
  auto a = MakeAllocator(12 * kGiB);
  EXPECT_EQ(a->largest_free_block(), 8 * kGiB);
  EXPECT_EQ(a->largest_root(), 8 * kGiB);
  // The whole region comes back as exactly its two roots.
  std::vector<Block> all = MustAllocate(*a, Req(12 * kGiB));
  EXPECT_THAT(all, ElementsAre(Block{0, 8 * kGiB}, Block{8 * kGiB, 4 * kGiB}));
  EXPECT_EQ(a->free_bytes(), 0);
  EXPECT_EQ(a->largest_free_block(), 0);
  ASSERT_TRUE(a->Free(all).ok());
  EXPECT_EQ(a->free_bytes(), 12 * kGiB);
  EXPECT_EQ(a->largest_free_block(), 8 * kGiB);
  EXPECT_TRUE(a->CheckInvariantsForTest().ok());
}

TEST(BuddyAllocatorTest, BlocksNeverSpanTwoRoots) {
  // 12 KiB = 8 KiB root at 0 + 4 KiB root at 8 KiB.
  auto a = MakeAllocator(12 * kKiB);
  EXPECT_THAT(MustAllocate(*a, Req(4 * kKiB, 0, 8 * kKiB)),
              ElementsAre(Block{0, 4 * kKiB}));
  // [4K, 12K) is free and adjacent, but 4K@4K and 4K@8K are not buddies.
  EXPECT_EQ(a->largest_free_block(), 4 * kKiB);
  EXPECT_EQ(a->Allocate(Req(8 * kKiB, 0, 0, true)).status().code(),
            absl::StatusCode::kResourceExhausted);
  std::vector<Block> second = MustAllocate(*a, Req(8 * kKiB));
  std::sort(second.begin(), second.end(),
            [](const Block& x, const Block& y) { return x.offset < y.offset; });
  EXPECT_THAT(second, ElementsAre(Block{4 * kKiB, 4 * kKiB},
                                  Block{8 * kKiB, 4 * kKiB}));
  EXPECT_EQ(a->free_bytes(), 0u);
}

TEST(BuddyAllocatorTest, SmallestFreeBlockIsUsedFirst) {
  // Best fit across roots: the 4 KiB root serves a 4 KiB request.
  auto a = MakeAllocator(12 * kKiB);
  EXPECT_THAT(MustAllocate(*a, Req(4 * kKiB)),
              ElementsAre(Block{8 * kKiB, 4 * kKiB}));
  EXPECT_EQ(a->largest_free_block(), 8 * kKiB);
}

TEST(BuddyAllocatorTest, AllocationSplitsIntoDecreasingPowersOfTwo) {
  auto a = MakeAllocator(64 * kKiB);
  std::vector<Block> blocks = MustAllocate(*a, Req(12 * kKiB));
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0].size, 8 * kKiB);
  EXPECT_EQ(blocks[1].size, 4 * kKiB);
  for (const Block& b : blocks) EXPECT_EQ(b.offset % b.size, 0u) << b;
  EXPECT_EQ(a->free_bytes(), 52 * kKiB);
  EXPECT_EQ(a->largest_free_block(), 32 * kKiB);
}

TEST(BuddyAllocatorTest, SizeIsRoundedUpToChunk) {
  auto a = MakeAllocator(64 * kKiB);
  EXPECT_THAT(MustAllocate(*a, Req(1)), ElementsAre(Block{0, 4 * kKiB}));
  std::vector<Block> b = MustAllocate(*a, Req(4 * kKiB + 1));
  EXPECT_EQ(Total(b), 8 * kKiB);
  EXPECT_EQ(a->free_bytes(), 52 * kKiB);
}

TEST(BuddyAllocatorTest, LargerChunkSizeIsTheSmallestBlock) {
  auto a = MakeAllocator(kMiB, 64 * kKiB);
  std::vector<Block> b = MustAllocate(*a, Req(4 * kKiB));
  EXPECT_THAT(b, ElementsAre(Block{0, 64 * kKiB}));
  EXPECT_EQ(a->free_bytes(), kMiB - 64 * kKiB);
}

TEST(BuddyAllocatorTest, SplittingLeavesEachRightBuddyFree) {
  auto a = MakeAllocator(64 * kKiB);
  EXPECT_THAT(MustAllocate(*a, Req(4 * kKiB)), ElementsAre(Block{0, 4 * kKiB}));
  // 4K at 4K, 8K at 8K, 16K at 16K and 32K at 32K are free.
  EXPECT_EQ(a->largest_free_block(), 32 * kKiB);
  EXPECT_EQ(a->free_bytes_in_range(4 * kKiB, 8 * kKiB), 4 * kKiB);
  EXPECT_EQ(a->free_bytes_in_range(0, 4 * kKiB), 0u);
  EXPECT_EQ(a->free_bytes_in_range(0, 64 * kKiB), 60 * kKiB);
  EXPECT_EQ(a->free_bytes_in_range(6 * kKiB, 10 * kKiB), 4 * kKiB);
  // The next 4 KiB comes from the smallest free block: the buddy.
  EXPECT_THAT(MustAllocate(*a, Req(4 * kKiB)),
              ElementsAre(Block{4 * kKiB, 4 * kKiB}));
}

TEST(BuddyAllocatorTest, FreeMergesBuddiesBackToTheRoot) {
  auto a = MakeAllocator(64 * kKiB);
  std::vector<std::vector<Block>> live;
  for (int i = 0; i < 16; ++i) live.push_back(MustAllocate(*a, Req(4 * kKiB)));
  EXPECT_EQ(a->free_bytes(), 0u);
  // Free in an order that leaves no buddy pair complete until the end.
  for (int i : {0, 2, 4, 6, 8, 10, 12, 14, 1, 5, 9, 13, 3, 11, 7, 15}) {
    ASSERT_TRUE(a->Free(live[i]).ok());
    ASSERT_TRUE(a->CheckInvariantsForTest().ok())
        << a->CheckInvariantsForTest();
  }
  EXPECT_EQ(a->free_bytes(), 64 * kKiB);
  EXPECT_EQ(a->largest_free_block(), 64 * kKiB);
}

TEST(BuddyAllocatorTest, FreeMergesOnlyWhenBothBuddiesAreFree) {
  auto a = MakeAllocator(64 * kKiB);
  std::vector<Block> x = MustAllocate(*a, Req(4 * kKiB));  // 0
  std::vector<Block> y = MustAllocate(*a, Req(4 * kKiB));  // 4K
  ASSERT_TRUE(a->Free(x).ok());
  EXPECT_EQ(a->largest_free_block(), 32 * kKiB);
  EXPECT_EQ(a->free_bytes_in_range(0, 8 * kKiB), 4 * kKiB);
  ASSERT_TRUE(a->Free(y).ok());
  EXPECT_EQ(a->largest_free_block(), 64 * kKiB);
  EXPECT_TRUE(a->CheckInvariantsForTest().ok());
}

TEST(BuddyAllocatorTest, FreeAcceptsAnySubsetInAnyOrder) {
  auto a = MakeAllocator(kMiB);
  std::vector<Block> blocks = MustAllocate(*a, Req(60 * kKiB));  // 32+16+8+4
  ASSERT_EQ(blocks.size(), 4u);
  ASSERT_TRUE(a->Free({blocks[2], blocks[0]}).ok());
  EXPECT_EQ(a->free_bytes(), kMiB - 20 * kKiB);
  ASSERT_TRUE(a->CheckInvariantsForTest().ok());
  ASSERT_TRUE(a->Free({blocks[3]}).ok());
  ASSERT_TRUE(a->Free({blocks[1]}).ok());
  EXPECT_EQ(a->free_bytes(), kMiB);
  EXPECT_EQ(a->largest_free_block(), kMiB);
}

TEST(BuddyAllocatorTest, FreeOfEmptyListIsANoOp) {
  auto a = MakeAllocator(kMiB);
  EXPECT_TRUE(a->Free({}).ok());
  EXPECT_EQ(a->free_bytes(), kMiB);
}

TEST(BuddyAllocatorTest, FreeRejectsBlocksThatAreNotAllocated) {
  auto a = MakeAllocator(kMiB);
  std::vector<Block> held = MustAllocate(*a, Req(12 * kKiB));  // 8K@0, 4K@8K
  const Snapshot before = Snapshot::Of(*a);
  const std::vector<Block> bad = {
      {16 * kKiB, 4 * kKiB},  // free
      {0, 4 * kKiB},          // inside an allocated 8K block
      {0, 16 * kKiB},         // contains allocated blocks
      {0, 12 * kKiB},         // not a power of two
      {2 * kKiB, 4 * kKiB},   // misaligned
      {0, 0},                 // empty
      {kMiB, 4 * kKiB},       // outside the region
      {~uint64_t{0} - 4095, 4 * kKiB},
  };
  for (const Block& b : bad) {
    EXPECT_EQ(a->Free({b}).code(), absl::StatusCode::kInvalidArgument) << b;
    EXPECT_TRUE(Snapshot::Of(*a) == before) << b;
    EXPECT_TRUE(a->CheckInvariantsForTest().ok()) << b;
  }
  EXPECT_TRUE(a->Free(held).ok());
  EXPECT_EQ(a->free_bytes(), kMiB);
}

TEST(BuddyAllocatorTest, DoubleFreeIsRejected) {
  auto a = MakeAllocator(kMiB);
  std::vector<Block> b = MustAllocate(*a, Req(4 * kKiB));
  std::vector<Block> keep = MustAllocate(*a, Req(4 * kKiB));
  ASSERT_TRUE(a->Free(b).ok());
  EXPECT_EQ(a->Free(b).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a->free_bytes(), kMiB - 4 * kKiB);
  EXPECT_TRUE(a->CheckInvariantsForTest().ok());
}

TEST(BuddyAllocatorTest, FreeIsAllOrNothing) {
  auto a = MakeAllocator(kMiB);
  std::vector<Block> b = MustAllocate(*a, Req(4 * kKiB));
  const Snapshot before = Snapshot::Of(*a);
  // A valid block followed by an invalid one: nothing is freed.
  EXPECT_EQ(a->Free({b[0], Block{512 * kKiB, 4 * kKiB}}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Snapshot::Of(*a) == before);
  // The same block twice in one call.
  EXPECT_EQ(a->Free({b[0], b[0]}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Snapshot::Of(*a) == before);
  EXPECT_TRUE(a->CheckInvariantsForTest().ok()) << a->CheckInvariantsForTest();
  EXPECT_TRUE(a->Free(b).ok());
  EXPECT_EQ(a->free_bytes(), kMiB);
}

TEST(BuddyAllocatorTest, AllocateRejectsBadRequests) {
  auto a = MakeAllocator(kMiB);
  const struct {
    BuddyAllocator::Request request;
    const char* why;
  } cases[] = {
      {Req(0), "size 0"},
      {Req(kMiB + 1), "larger than the region"},
      {Req(4 * kKiB, 2 * kKiB, 64 * kKiB), "range start unaligned"},
      {Req(4 * kKiB, 0, 64 * kKiB + 1), "range end unaligned"},
      {Req(4 * kKiB, 0, 2 * kMiB), "range end past the region"},
      {Req(4 * kKiB, 64 * kKiB, 64 * kKiB), "empty range"},
      {Req(4 * kKiB, 128 * kKiB, 64 * kKiB), "inverted range"},
      {Req(64 * kKiB + 1, 0, 64 * kKiB), "larger than the range"},
      {Req(8 * kKiB, 4 * kKiB, 12 * kKiB, true),
       "contiguous: no aligned 8K inside [4K, 12K)"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(a->Allocate(c.request).status().code(),
              absl::StatusCode::kInvalidArgument)
        << c.why;
  }
  EXPECT_EQ(a->free_bytes(), kMiB);
  EXPECT_TRUE(a->CheckInvariantsForTest().ok());
}

TEST(BuddyAllocatorTest, ContiguousLargerThanAnyRootIsInvalid) {
  auto a = MakeAllocator(12 * kGiB);
  // 9 GiB rounds to 16 GiB; the largest root is 8 GiB.
  EXPECT_EQ(a->Allocate(Req(9 * kGiB, 0, 0, true)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(MustAllocate(*a, Req(8 * kGiB, 0, 0, true)),
              ElementsAre(Block{0, 8 * kGiB}));
}

TEST(BuddyAllocatorTest, RangeRestrictedBlocksStayInsideTheRange) {
  auto a = MakeAllocator(kMiB);
  const uint64_t start = 256 * kKiB;
  const uint64_t end = 512 * kKiB;
  std::vector<Block> blocks = MustAllocate(*a, Req(200 * kKiB, start, end));
  EXPECT_EQ(Total(blocks), 200 * kKiB);
  for (const Block& b : blocks) {
    EXPECT_GE(b.offset, start) << b;
    EXPECT_LE(b.offset + b.size, end) << b;
  }
  EXPECT_EQ(a->free_bytes_in_range(start, end), 56 * kKiB);
}

TEST(BuddyAllocatorTest, RangeAllocationSkipsFreeListHeadsOutsideTheRange) {
  // A CPU-visible aperture of the first 256 KiB: fill most of it, then the
  // free-list heads lie above the aperture and the search must dig.
  auto a = MakeAllocator(4 * kMiB);
  const uint64_t aperture = 256 * kKiB;
  std::vector<std::vector<Block>> held;
  for (int i = 0; i < 60; ++i) {
    held.push_back(MustAllocate(*a, Req(4 * kKiB, 0, aperture)));
  }
  std::vector<Block> outside = MustAllocate(*a, Req(kMiB));
  EXPECT_GE(outside[0].offset, aperture);
  EXPECT_EQ(a->free_bytes_in_range(0, aperture), 16 * kKiB);
  std::vector<Block> more = MustAllocate(*a, Req(16 * kKiB, 0, aperture));
  for (const Block& b : more) EXPECT_LE(b.offset + b.size, aperture) << b;
  EXPECT_EQ(a->free_bytes_in_range(0, aperture), 0u);
  EXPECT_EQ(a->Allocate(Req(4 * kKiB, 0, aperture)).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(BuddyAllocatorTest, RangeStartInsideAFreeBlockIsHonoured) {
  auto a = MakeAllocator(64 * kKiB);
  // [4K, 64K): an 8 KiB block must start at 8 KiB, the first aligned spot.
  EXPECT_THAT(MustAllocate(*a, Req(8 * kKiB, 4 * kKiB, 64 * kKiB)),
              ElementsAre(Block{8 * kKiB, 8 * kKiB}));
  EXPECT_THAT(MustAllocate(*a, Req(4 * kKiB, 4 * kKiB, 8 * kKiB)),
              ElementsAre(Block{4 * kKiB, 4 * kKiB}));
  EXPECT_EQ(a->free_bytes_in_range(0, 4 * kKiB), 4 * kKiB);
}

TEST(BuddyAllocatorTest, RangeExhaustionLeavesStateUnchanged) {
  auto a = MakeAllocator(kMiB);
  std::vector<Block> held = MustAllocate(*a, Req(48 * kKiB, 0, 64 * kKiB));
  const Snapshot before = Snapshot::Of(*a);
  // Plenty free in the region, only 16 KiB in the range: the request takes
  // those 16 KiB before it finds out, and must give them back.
  EXPECT_EQ(a->Allocate(Req(32 * kKiB, 0, 64 * kKiB)).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Snapshot::Of(*a) == before);
  EXPECT_TRUE(a->CheckInvariantsForTest().ok()) << a->CheckInvariantsForTest();
  ASSERT_TRUE(a->Free(held).ok());
  EXPECT_EQ(a->largest_free_block(), kMiB);
}

TEST(BuddyAllocatorTest, ExhaustionLeavesStateUnchanged) {
  auto a = MakeAllocator(kMiB);
  std::vector<Block> held = MustAllocate(*a, Req(4 * kKiB));
  const Snapshot before = Snapshot::Of(*a);
  EXPECT_EQ(a->Allocate(Req(kMiB)).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(a->Allocate(Req(kMiB, 0, 0, true)).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(a->Allocate(Req(kMiB / 2 + 4 * kKiB, 0, 0, true)).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Snapshot::Of(*a) == before);
  EXPECT_TRUE(a->CheckInvariantsForTest().ok());
}

TEST(BuddyAllocatorTest, FragmentedRegionFallsBackToSmallerBlocks) {
  auto a = MakeAllocator(64 * kKiB);
  std::vector<std::vector<Block>> chunks;
  for (int i = 0; i < 16; ++i)
    chunks.push_back(MustAllocate(*a, Req(4 * kKiB)));
  for (int i = 0; i < 16; i += 2) ASSERT_TRUE(a->Free(chunks[i]).ok());
  EXPECT_EQ(a->free_bytes(), 32 * kKiB);
  EXPECT_EQ(a->largest_free_block(), 4 * kKiB);
  // 32 KiB is free, but only as 4 KiB holes.
  EXPECT_EQ(a->Allocate(Req(8 * kKiB, 0, 0, true)).status().code(),
            absl::StatusCode::kResourceExhausted);
  std::vector<Block> scattered = MustAllocate(*a, Req(16 * kKiB));
  ASSERT_EQ(scattered.size(), 4u);
  for (const Block& b : scattered) EXPECT_EQ(b.size, 4 * kKiB);
}

TEST(BuddyAllocatorTest, ContiguousRoundsUpToPowerOfTwoAndTrimsTheTail) {
  auto a = MakeAllocator(kMiB);
  std::vector<Block> blocks = MustAllocate(*a, Req(12 * kKiB, 0, 0, true));
  ASSERT_THAT(blocks,
              ElementsAre(Block{0, 8 * kKiB}, Block{8 * kKiB, 4 * kKiB}));
  EXPECT_EQ(a->free_bytes(), kMiB - 12 * kKiB);
  // The trimmed 4 KiB tail is free again.
  EXPECT_EQ(a->free_bytes_in_range(12 * kKiB, 16 * kKiB), 4 * kKiB);
  ASSERT_TRUE(a->Free(blocks).ok());
  EXPECT_EQ(a->largest_free_block(), kMiB);
}

TEST(BuddyAllocatorTest, ContiguousExtentIsAdjacentAscendingBlocks) {
  auto a = MakeAllocator(4 * kMiB);
  MustAllocate(*a, Req(4 * kKiB));  // push later blocks off offset 0
  for (uint64_t size : {4 * kKiB, 28 * kKiB, 100 * kKiB, 1020 * kKiB}) {
    std::vector<Block> blocks = MustAllocate(*a, Req(size, 0, 0, true));
    ASSERT_FALSE(blocks.empty());
    EXPECT_EQ(Total(blocks), (size + 4 * kKiB - 1) / (4 * kKiB) * (4 * kKiB));
    for (size_t i = 1; i < blocks.size(); ++i) {
      EXPECT_EQ(blocks[i].offset, blocks[i - 1].offset + blocks[i - 1].size);
      EXPECT_LT(blocks[i].size, blocks[i - 1].size);
    }
  }
}

TEST(BuddyAllocatorTest, ContiguousInsideRange) {
  auto a = MakeAllocator(kMiB);
  std::vector<Block> blocks =
      MustAllocate(*a, Req(192 * kKiB, 256 * kKiB, 768 * kKiB, true));
  EXPECT_THAT(blocks, ElementsAre(Block{256 * kKiB, 128 * kKiB},
                                  Block{384 * kKiB, 64 * kKiB}));
  // The next 256 KiB aligned block in the range is [512K, 768K).
  EXPECT_THAT(MustAllocate(*a, Req(256 * kKiB, 256 * kKiB, 768 * kKiB, true)),
              ElementsAre(Block{512 * kKiB, 256 * kKiB}));
  EXPECT_EQ(a->Allocate(Req(128 * kKiB, 256 * kKiB, 768 * kKiB, true))
                .status()
                .code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(BuddyAllocatorTest, WholeRegionInChunksThenBackToRoots) {
  auto a = MakeAllocator(96 * kKiB);  // roots 64K + 32K
  std::vector<Block> all;
  for (int i = 0; i < 24; ++i) {
    std::vector<Block> b = MustAllocate(*a, Req(4 * kKiB));
    all.insert(all.end(), b.begin(), b.end());
  }
  EXPECT_EQ(a->free_bytes(), 0u);
  EXPECT_EQ(a->Allocate(Req(4 * kKiB)).status().code(),
            absl::StatusCode::kResourceExhausted);
  std::reverse(all.begin(), all.end());
  ASSERT_TRUE(a->Free(all).ok());
  EXPECT_EQ(a->free_bytes(), 96 * kKiB);
  EXPECT_EQ(a->largest_free_block(), 64 * kKiB);
  EXPECT_TRUE(a->CheckInvariantsForTest().ok());
}

TEST(BuddyAllocatorTest, LargeRegionAllocatesSmallBlocksCheaply) {
  // 16 GiB in 4 KiB chunks: metadata grows only with the splits made.
  auto a = MakeAllocator(16 * kGiB);
  std::vector<Block> b = MustAllocate(*a, Req(4 * kKiB, 15 * kGiB, 0));
  EXPECT_THAT(b, ElementsAre(Block{15 * kGiB, 4 * kKiB}));
  ASSERT_TRUE(a->Free(b).ok());
  EXPECT_EQ(a->largest_free_block(), 16 * kGiB);
  EXPECT_TRUE(a->CheckInvariantsForTest().ok());
}

}  // namespace
}  // namespace gpumig
