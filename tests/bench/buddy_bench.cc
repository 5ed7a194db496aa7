// BuddyAllocator throughput: alloc+free pairs on a 16 GiB region in 4 KiB
// chunks (4 Mi chunks), in the empty, fragmented and range-restricted cases.
//
//   bazel run -c opt //tests/bench:buddy_bench -- --benchmark_format=json
//
// items_per_second counts alloc+free pairs.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "benchmark/benchmark.h"
#include "core/mem/buddy_allocator.h"

namespace gpumig {
namespace {

constexpr uint64_t kKiB = uint64_t{1} << 10;
constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kRegion = 16 * kGiB;

std::unique_ptr<BuddyAllocator> MakeRegion(benchmark::State& state) {
  absl::StatusOr<std::unique_ptr<BuddyAllocator>> a =
      BuddyAllocator::Create(kRegion, 4 * kKiB);
  if (!a.ok()) {
    state.SkipWithError("BuddyAllocator::Create failed");
    return nullptr;
  }
  return std::move(a).value();
}

// Small, fast, deterministic.
class XorShift {
 public:
  explicit XorShift(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    s_ ^= s_ << 13;
    s_ ^= s_ >> 7;
    s_ ^= s_ << 17;
    return s_;
  }

 private:
  uint64_t s_;
};

void AllocFreePairs(benchmark::State& state, BuddyAllocator& a,
                    const BuddyAllocator::Request& r) {
  for (auto _ : state) {
    absl::StatusOr<std::vector<Block>> blocks = a.Allocate(r);
    if (!blocks.ok()) {
      state.SkipWithError("Allocate failed");
      break;
    }
    benchmark::DoNotOptimize(blocks->data());
    if (!a.Free(*blocks).ok()) {
      state.SkipWithError("Free failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

// Empty region: every 4 KiB allocation splits 22 levels down from the root
// and every free merges them all back up.
void BM_AllocFree4K(benchmark::State& state) {
  std::unique_ptr<BuddyAllocator> a = MakeRegion(state);
  if (a == nullptr) return;
  BuddyAllocator::Request r;
  r.size = 4 * kKiB;
  AllocFreePairs(state, *a, r);
}
BENCHMARK(BM_AllocFree4K);

void BM_AllocFree2M(benchmark::State& state) {
  std::unique_ptr<BuddyAllocator> a = MakeRegion(state);
  if (a == nullptr) return;
  BuddyAllocator::Request r;
  r.size = 2 * kMiB;
  AllocFreePairs(state, *a, r);
}
BENCHMARK(BM_AllocFree2M);

// 64 KiB contiguous: one block.
void BM_AllocFree64KContiguous(benchmark::State& state) {
  std::unique_ptr<BuddyAllocator> a = MakeRegion(state);
  if (a == nullptr) return;
  BuddyAllocator::Request r;
  r.size = 64 * kKiB;
  r.contiguous = true;
  AllocFreePairs(state, *a, r);
}
BENCHMARK(BM_AllocFree64KContiguous);

// A random allocation size: 4 KiB..256 KiB in 4 KiB steps.
uint64_t RandomSize(XorShift& rng) { return (1 + rng.Next() % 64) * 4 * kKiB; }

// Fills the region with random-size allocations and frees a random half:
// about 8 GiB left free in holes of every size between ~64k live allocations.
std::vector<std::vector<Block>> Fragment(BuddyAllocator& a, XorShift& rng) {
  std::vector<std::vector<Block>> live;
  while (true) {
    BuddyAllocator::Request r;
    r.size = RandomSize(rng);
    absl::StatusOr<std::vector<Block>> b = a.Allocate(r);
    if (!b.ok()) break;
    live.push_back(*std::move(b));
  }
  std::vector<std::vector<Block>> kept;
  for (std::vector<Block>& b : live) {
    if (rng.Next() % 2 == 0) {
      if (!a.Free(b).ok()) std::abort();
    } else {
      kept.push_back(std::move(b));
    }
  }
  return kept;
}

// Fragmented region, steady state: free a random live allocation, allocate
// one of a random size from the same distribution, so the fragmentation stays
// as it is. Each allocation is one to six blocks (1.9 on average here).
void BM_AllocFreeFragmented(benchmark::State& state) {
  std::unique_ptr<BuddyAllocator> a = MakeRegion(state);
  if (a == nullptr) return;
  XorShift rng(0x9e3779b97f4a7c15ull);
  std::vector<std::vector<Block>> live = Fragment(*a, rng);
  uint64_t blocks = 0;
  for (auto _ : state) {
    const size_t victim = rng.Next() % live.size();
    if (!a->Free(live[victim]).ok()) {
      state.SkipWithError("Free failed");
      break;
    }
    BuddyAllocator::Request r;
    r.size = RandomSize(rng);
    absl::StatusOr<std::vector<Block>> b = a->Allocate(r);
    if (!b.ok()) {
      state.SkipWithError("Allocate failed");
      break;
    }
    blocks += b->size();
    live[victim] = *std::move(b);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["live_allocations"] = live.size();
  state.counters["free_GiB"] = static_cast<double>(a->free_bytes()) / kGiB;
  state.counters["blocks_per_alloc"] =
      static_cast<double>(blocks) / std::max<int64_t>(1, state.iterations());
}
BENCHMARK(BM_AllocFreeFragmented);

// Fragments the region, then allocates all but `leave` bytes of the free
// space inside [0, aperture) in 4 KiB blocks.
std::vector<std::vector<Block>> FragmentAndFillAperture(BuddyAllocator& a,
                                                        uint64_t aperture,
                                                        uint64_t leave,
                                                        XorShift& rng) {
  std::vector<std::vector<Block>> live = Fragment(a, rng);
  BuddyAllocator::Request r;
  r.size = 4 * kKiB;
  r.range_end = aperture;
  const uint64_t fill = a.free_bytes_in_range(0, aperture) - leave;
  for (uint64_t done = 0; done < fill; done += r.size) {
    absl::StatusOr<std::vector<Block>> b = a.Allocate(r);
    if (!b.ok()) std::abort();
    live.push_back(*std::move(b));
  }
  return live;
}

// 4 KiB pairs restricted to a 256 MiB CPU-visible aperture of a fragmented
// region with 64 KiB free in the aperture. Freeing pushes the block back on
// top of its free list, so the next allocation usually finds a free-list head
// inside the aperture: the common path.
void BM_AllocFree4KInAperture(benchmark::State& state) {
  std::unique_ptr<BuddyAllocator> a = MakeRegion(state);
  if (a == nullptr) return;
  XorShift rng(0x2545f4914f6cdd1dull);
  const uint64_t aperture = 256 * kMiB;
  std::vector<std::vector<Block>> live =
      FragmentAndFillAperture(*a, aperture, 64 * kKiB, rng);
  BuddyAllocator::Request r;
  r.size = 4 * kKiB;
  r.range_end = aperture;
  AllocFreePairs(state, *a, r);
}
BENCHMARK(BM_AllocFree4KInAperture);

// The slow path: every range-restricted allocation finds no free-list head in
// its range and searches the tree. The aperture holds one free chunk H; D is
// a chunk outside it. Each iteration frees D (now a head outside the
// aperture) and allocates 4 KiB in the aperture (search finds H), then frees
// H (now the head) and allocates 4 KiB in [D, D + 4 KiB) (search finds D).
// items_per_second counts both range-restricted alloc+free pairs.
void BM_AllocFree4KRangeSearch(benchmark::State& state) {
  std::unique_ptr<BuddyAllocator> a = MakeRegion(state);
  if (a == nullptr) return;
  XorShift rng(0x5851f42d4c957f2dull);
  const uint64_t aperture = 256 * kMiB;
  std::vector<std::vector<Block>> live =
      FragmentAndFillAperture(*a, aperture, 0, rng);
  // One free chunk in the aperture: its buddy is allocated, so it stays 4 KiB.
  std::vector<Block> hole = live.back();
  live.pop_back();
  if (!a->Free(hole).ok()) std::abort();
  BuddyAllocator::Request outside;
  outside.size = 4 * kKiB;
  outside.range_start = aperture;
  absl::StatusOr<std::vector<Block>> d = a->Allocate(outside);
  if (!d.ok()) std::abort();
  std::vector<Block> held = *d;
  BuddyAllocator::Request in_aperture;
  in_aperture.size = 4 * kKiB;
  in_aperture.range_end = aperture;
  BuddyAllocator::Request at_d;
  at_d.size = 4 * kKiB;
  at_d.range_start = held[0].offset;
  at_d.range_end = held[0].offset + held[0].size;
  for (auto _ : state) {
    if (!a->Free(held).ok()) std::abort();
    absl::StatusOr<std::vector<Block>> h = a->Allocate(in_aperture);
    if (!h.ok() || !a->Free(*h).ok()) std::abort();
    d = a->Allocate(at_d);
    if (!d.ok()) std::abort();
    held = *std::move(d);
  }
  state.SetItemsProcessed(2 * state.iterations());
}
BENCHMARK(BM_AllocFree4KRangeSearch);

}  // namespace
}  // namespace gpumig

BENCHMARK_MAIN();
