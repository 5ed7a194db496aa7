#include "core/fence/fence_array.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "core/fence/fence.h"
#include "gtest/gtest.h"

// Test-only synchronisation uses atomics and thread joins: Debian's
// absl::Mutex is invisible to ThreadSanitizer.

namespace gpumig {
namespace {

uint32_t TestSeed() {
  uint32_t seed = 0;
  const char* env = std::getenv("GPUMIG_TEST_SEED");
  if (env == nullptr || !absl::SimpleAtoi(env, &seed)) {
    seed = std::random_device()();
  }
  std::cout << "seed: " << seed << " (rerun with GPUMIG_TEST_SEED=" << seed
            << ")\n";
  return seed;
}

std::vector<FenceRef> Members(int n) {
  std::vector<FenceRef> v;
  for (int i = 0; i < n; ++i) v.push_back(Fence::Create("m"));
  return v;
}

TEST(FenceArrayTest, SignalsOnlyAfterLastMember) {
  std::vector<FenceRef> m = Members(3);
  auto array = FenceArray::Create("batch", m);
  ASSERT_FALSE(array->fence()->IsSignaled());
  ASSERT_TRUE(m[2]->Signal().ok());
  ASSERT_TRUE(m[0]->Signal().ok());
  EXPECT_FALSE(array->fence()->IsSignaled());
  EXPECT_EQ(array->counts().pending, 1u);
  ASSERT_TRUE(m[1]->Signal().ok());
  EXPECT_TRUE(array->fence()->IsSignaled());
  EXPECT_TRUE(array->fence()->error().ok());
  FenceArrayCounts c = array->counts();
  EXPECT_EQ(c.members, 3u);
  EXPECT_EQ(c.blit_ok, 3u);
  EXPECT_EQ(c.pending, 0u);
}

TEST(FenceArrayTest, SignalsInlineFromLastMembersThread) {
  std::vector<FenceRef> m = Members(2);
  auto array = FenceArray::Create("batch", m);
  ASSERT_TRUE(m[0]->Signal().ok());
  std::atomic<bool> signaled_in_thread{false};
  std::thread t([&] {
    ASSERT_TRUE(m[1]->Signal().ok());
    // No thread hop: signalled before Signal() returned on this thread.
    signaled_in_thread = array->fence()->IsSignaled();
  });
  t.join();
  EXPECT_TRUE(signaled_in_thread);
}

TEST(FenceArrayTest, FirstErrorInSignalOrderWins) {
  std::vector<FenceRef> m = Members(4);
  auto array = FenceArray::Create("batch", m);
  ASSERT_TRUE(m[0]->Signal().ok());
  ASSERT_TRUE(m[3]->SignalWithError(absl::DataLossError("third")).ok());
  ASSERT_TRUE(m[1]->SignalWithError(absl::InternalError("first?")).ok());
  ASSERT_TRUE(m[2]->Signal().ok());
  ASSERT_TRUE(array->fence()->IsSignaled());
  EXPECT_EQ(array->fence()->error(), absl::DataLossError("third"));
  FenceArrayCounts c = array->counts();
  EXPECT_EQ(c.blit_ok, 2u);
  EXPECT_EQ(c.failed, 2u);
}

TEST(FenceArrayTest, AlreadySignalledMembersCountInMemberOrder) {
  std::vector<FenceRef> m = {
      Fence::CreateSignaled("a"),
      Fence::CreateSignaled("b", absl::AbortedError("b")),
      Fence::CreateSignaled("c", absl::InternalError("c"))};
  auto array = FenceArray::Create("batch", m);
  ASSERT_TRUE(array->fence()->IsSignaled());
  EXPECT_EQ(array->fence()->error(), absl::AbortedError("b"));
}

TEST(FenceArrayTest, ZeroMembersSignalsAtOnce) {
  auto array = FenceArray::Create("empty", {});
  EXPECT_TRUE(array->fence()->IsSignaled());
  EXPECT_TRUE(array->fence()->error().ok());
  EXPECT_EQ(array->counts().members, 0u);
}

TEST(FenceArrayTest, NullAndDuplicateMembersCountOnce) {
  FenceRef f = Fence::Create("f");
  auto array = FenceArray::Create("batch", {f, nullptr, f});
  EXPECT_EQ(array->counts().members, 1u);
  ASSERT_TRUE(f->Signal().ok());
  EXPECT_TRUE(array->fence()->IsSignaled());
}

TEST(FenceArrayTest, ClassifierCountsOutcomes) {
  std::vector<FenceRef> m = Members(4);
  auto array = FenceArray::Create("batch", m, [](size_t, const Fence& f) {
    if (f.error().ok()) {
      return f.name() == "fb" ? ArrayMemberOutcome::kFallback
                              : ArrayMemberOutcome::kBlitOk;
    }
    return f.error().code() == absl::StatusCode::kDataLoss
               ? ArrayMemberOutcome::kUnknownState
               : ArrayMemberOutcome::kFailed;
  });
  FenceRef fb = Fence::Create("fb");
  auto array2 = FenceArray::Create("b2", {fb});
  ASSERT_TRUE(fb->Signal().ok());
  ASSERT_TRUE(m[0]->Signal().ok());
  ASSERT_TRUE(m[1]->SignalWithError(absl::DataLossError("u")).ok());
  ASSERT_TRUE(m[2]->SignalWithError(absl::InternalError("f")).ok());
  ASSERT_TRUE(m[3]->Signal().ok());
  FenceArrayCounts c = array->counts();
  EXPECT_EQ(c.blit_ok, 2u);
  EXPECT_EQ(c.unknown_state, 1u);
  EXPECT_EQ(c.failed, 1u);
  EXPECT_EQ(c.fallback, 0u);
  EXPECT_EQ(array2->counts().blit_ok, 1u);
}

TEST(FenceArrayTest, ArrayOutlivesItsHandle) {
  std::vector<FenceRef> m = Members(2);
  FenceRef fence;
  {
    auto array = FenceArray::Create("batch", m);
    fence = array->fence();
  }
  ASSERT_TRUE(m[0]->Signal().ok());
  ASSERT_TRUE(m[1]->Signal().ok());
  EXPECT_TRUE(fence->IsSignaled());
}

// Members signalled concurrently from many threads in random order: the
// array signals exactly once, after all, with every count final.
TEST(FenceArrayTest, ConcurrentMembersSignalOnceAfterAll) {
  std::mt19937 rng(TestSeed());
  for (int round = 0; round < 50; ++round) {
    const int n = 64;
    std::vector<FenceRef> m = Members(n);
    auto array = FenceArray::Create("batch", m);
    std::atomic<int> signaled_members{0};
    std::atomic<int> array_callbacks{0};
    std::atomic<int> early{0};
    ASSERT_TRUE(array->fence()
                    ->AddCallback([&](const Fence&) {
                      if (signaled_members.load() != n) early++;
                      array_callbacks++;
                    })
                    .ok());
    std::vector<int> order(n);
    for (int i = 0; i < n; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = t; i < n; i += 4) {
          FenceRef f = m[order[i]];
          signaled_members++;
          if (order[i] % 7 == 0) {
            ASSERT_TRUE(f->SignalWithError(absl::InternalError("e")).ok());
          } else {
            ASSERT_TRUE(f->Signal().ok());
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    ASSERT_TRUE(array->fence()->IsSignaled());
    EXPECT_EQ(array_callbacks.load(), 1);
    EXPECT_EQ(early.load(), 0);
    EXPECT_EQ(array->fence()->error().code(), absl::StatusCode::kInternal);
    FenceArrayCounts c = array->counts();
    EXPECT_EQ(c.failed, 10u);  // 0,7,...,63
    EXPECT_EQ(c.blit_ok, 54u);
    EXPECT_EQ(c.pending, 0u);
  }
}

}  // namespace
}  // namespace gpumig
