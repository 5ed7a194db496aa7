// Randomised alloc/free sequences checked against a chunk bitmap model.
//
// The seed comes from $GPUMIG_SEED when set, otherwise from the clock; it is
// printed, so a failure reproduces with GPUMIG_SEED=<seed>.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/mem/buddy_allocator.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

uint64_t TestSeed() {
  static const uint64_t seed = [] {
    uint64_t s = 0;
    const char* env = std::getenv("GPUMIG_SEED");
    if (env == nullptr || !absl::SimpleAtoi(env, &s)) {
      s = static_cast<uint64_t>(absl::GetCurrentTimeNanos());
    }
    std::cout << "buddy_property_test seed: " << s
              << " (rerun with GPUMIG_SEED=" << s << ")" << std::endl;
    return s;
  }();
  return seed;
}

// What the allocator should look like: one flag per chunk.
class Model {
 public:
  Model(uint64_t chunks, uint64_t chunk_size)
      : used_(chunks, false), chunk_size_(chunk_size) {}

  uint64_t chunks() const { return used_.size(); }
  uint64_t free_bytes() const { return FreeChunks(0, chunks()) * chunk_size_; }
  uint64_t FreeChunks(uint64_t lo, uint64_t hi) const {
    return std::count(used_.begin() + lo, used_.begin() + hi, false);
  }
  bool AllFree(uint64_t lo, uint64_t hi) const {
    return FreeChunks(lo, hi) == hi - lo;
  }
  // Is there a naturally aligned, wholly free run of 2^order chunks inside
  // [lo, hi)? Any aligned run inside the region lies inside one root.
  bool HasAlignedFree(int order, uint64_t lo, uint64_t hi) const {
    const uint64_t n = uint64_t{1} << order;
    for (uint64_t p = (lo + n - 1) / n * n; p + n <= hi; p += n) {
      if (AllFree(p, p + n)) return true;
    }
    return false;
  }
  // Largest naturally aligned free run: with eager merging this is exactly
  // the allocator's largest free block.
  uint64_t LargestFree() const {
    for (int order = 63; order >= 0; --order) {
      if ((uint64_t{1} << order) > chunks()) continue;
      if (HasAlignedFree(order, 0, chunks())) {
        return chunk_size_ << order;
      }
    }
    return 0;
  }
  void Set(uint64_t lo, uint64_t hi, bool used) {
    std::fill(used_.begin() + lo, used_.begin() + hi, used);
  }

 private:
  std::vector<bool> used_;
  uint64_t chunk_size_;
};

struct Live {
  std::vector<Block> blocks;
};

class BuddyPropertyTest : public ::testing::Test {
 protected:
  void SetUp() override { rng_.seed(TestSeed()); }

  uint64_t Uniform(uint64_t lo, uint64_t hi) {  // inclusive
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
  }

  // One random region, `steps` random operations, checks after each.
  void RunOne(int round, int steps);

  std::mt19937_64 rng_;
};

void BuddyPropertyTest::RunOne(int round, int steps) {
  const uint64_t chunk_size = uint64_t{4096} << Uniform(0, 2);
  const uint64_t chunks =
      Uniform(0, 3) == 0 ? uint64_t{1} << Uniform(0, 9) : Uniform(1, 700);
  const uint64_t size = chunks * chunk_size + Uniform(0, chunk_size - 1);
  SCOPED_TRACE(absl::StrCat("seed ", TestSeed(), " round ", round, ": ", chunks,
                            " chunks of ", chunk_size));
  absl::StatusOr<std::unique_ptr<BuddyAllocator>> created =
      BuddyAllocator::Create(size, chunk_size);
  ASSERT_TRUE(created.ok()) << created.status();
  BuddyAllocator& a = **created;
  ASSERT_EQ(a.size(), chunks * chunk_size);
  const uint64_t largest_root =
      chunk_size << (63 - __builtin_clzll(chunks));  // largest power <= chunks
  ASSERT_EQ(a.largest_root(), largest_root);

  Model model(chunks, chunk_size);
  std::vector<Live> live;
  std::vector<Block> freed;  // recently freed, for double-free probes

  for (int step = 0; step < steps; ++step) {
    SCOPED_TRACE(absl::StrCat("step ", step));
    const uint64_t op = Uniform(0, 99);
    if (op < 55 || live.empty()) {
      // Allocate.
      BuddyAllocator::Request r;
      const uint64_t max_chunks = std::max<uint64_t>(1, chunks / 4);
      r.size = Uniform(1, max_chunks * chunk_size);
      if (Uniform(0, 2) == 0) {
        r.range_start = Uniform(0, chunks - 1) * chunk_size;
        r.range_end =
            Uniform(r.range_start / chunk_size + 1, chunks) * chunk_size;
        if (r.range_end == a.size() && Uniform(0, 1) == 0) r.range_end = 0;
      }
      r.contiguous = Uniform(0, 3) == 0;
      const uint64_t lo = r.range_start / chunk_size;
      const uint64_t hi =
          (r.range_end == 0 ? a.size() : r.range_end) / chunk_size;
      const uint64_t want = (r.size + chunk_size - 1) / chunk_size;
      int order = 0;
      while ((uint64_t{1} << order) < want) ++order;

      // What the model says should happen.
      absl::StatusCode expected = absl::StatusCode::kOk;
      if (want > hi - lo) {
        expected = absl::StatusCode::kInvalidArgument;
      } else if (r.contiguous) {
        const uint64_t n = uint64_t{1} << order;
        const uint64_t p = (lo + n - 1) / n * n;
        if (n > largest_root / chunk_size || p + n > hi) {
          expected = absl::StatusCode::kInvalidArgument;
        } else if (!model.HasAlignedFree(order, lo, hi)) {
          expected = absl::StatusCode::kResourceExhausted;
        }
      } else if (model.FreeChunks(lo, hi) < want) {
        expected = absl::StatusCode::kResourceExhausted;
      }

      const uint64_t free_before = a.free_bytes();
      absl::StatusOr<std::vector<Block>> got = a.Allocate(r);
      ASSERT_EQ(got.status().code(), expected)
          << got.status() << " for size " << r.size << " range [" << lo << ", "
          << hi << ") chunks, contiguous " << r.contiguous;
      if (!got.ok()) {
        ASSERT_EQ(a.free_bytes(), free_before);
      } else {
        uint64_t total = 0;
        for (size_t i = 0; i < got->size(); ++i) {
          const Block& b = (*got)[i];
          ASSERT_GE(b.size, chunk_size) << b;
          ASSERT_EQ(b.size & (b.size - 1), 0u) << b;
          ASSERT_EQ(b.offset % b.size, 0u) << b;
          const uint64_t blo = b.offset / chunk_size;
          const uint64_t bhi = blo + b.size / chunk_size;
          ASSERT_GE(blo, lo) << b;
          ASSERT_LE(bhi, hi) << b;
          ASSERT_TRUE(model.AllFree(blo, bhi))
              << "overlaps a live block: " << b;
          model.Set(blo, bhi, true);
          total += b.size;
          if (r.contiguous && i > 0) {
            const Block& prev = (*got)[i - 1];
            ASSERT_EQ(b.offset, prev.offset + prev.size) << "not contiguous";
          }
        }
        ASSERT_EQ(total, want * chunk_size);
        live.push_back(Live{*std::move(got)});
      }
    } else if (op < 95) {
      // Free a whole allocation, or a random part of it.
      const size_t i = Uniform(0, live.size() - 1);
      std::vector<Block>& blocks = live[i].blocks;
      std::shuffle(blocks.begin(), blocks.end(), rng_);
      const size_t n =
          Uniform(0, 1) == 0 ? blocks.size() : Uniform(1, blocks.size());
      std::vector<Block> part(blocks.end() - n, blocks.end());
      blocks.resize(blocks.size() - n);
      if (blocks.empty()) {
        live[i] = std::move(live.back());
        live.pop_back();
      }
      ASSERT_TRUE(a.Free(part).ok());
      for (const Block& b : part) {
        model.Set(b.offset / chunk_size, (b.offset + b.size) / chunk_size,
                  false);
        freed.push_back(b);
      }
      if (freed.size() > 16) freed.erase(freed.begin(), freed.end() - 16);
    } else {
      // Free something not allocated: rejected, nothing changes.
      Block bad;
      if (!freed.empty() && Uniform(0, 1) == 0) {
        bad = freed[Uniform(0, freed.size() - 1)];
      } else {
        bad.size = chunk_size << Uniform(0, 3);
        bad.offset = Uniform(0, chunks) * chunk_size;
      }
      bool allocated = false;
      for (const Live& l : live) {
        for (const Block& b : l.blocks) allocated |= b == bad;
      }
      if (!allocated) {
        const uint64_t free_before = a.free_bytes();
        ASSERT_EQ(a.Free({bad}).code(), absl::StatusCode::kInvalidArgument)
            << bad;
        ASSERT_EQ(a.free_bytes(), free_before);
      }
    }

    // After every step.
    ASSERT_EQ(a.free_bytes(), model.free_bytes());
    const absl::Status invariants = a.CheckInvariantsForTest();
    ASSERT_TRUE(invariants.ok()) << invariants;
    ASSERT_EQ(a.largest_free_block(), model.LargestFree());
    const uint64_t qlo = Uniform(0, chunks - 1);
    const uint64_t qhi = Uniform(qlo + 1, chunks);
    ASSERT_EQ(a.free_bytes_in_range(qlo * chunk_size, qhi * chunk_size),
              model.FreeChunks(qlo, qhi) * chunk_size);
  }

  // Everything freed merges back to the roots.
  std::shuffle(live.begin(), live.end(), rng_);
  for (const Live& l : live) ASSERT_TRUE(a.Free(l.blocks).ok());
  ASSERT_TRUE(a.CheckInvariantsForTest().ok()) << a.CheckInvariantsForTest();
  ASSERT_EQ(a.free_bytes(), a.size());
  ASSERT_EQ(a.largest_free_block(), largest_root);
}

TEST_F(BuddyPropertyTest, RandomAllocFreeMatchesChunkBitmapModel) {
  for (int round = 0; round < 60; ++round) {
    RunOne(round, 300);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace gpumig
