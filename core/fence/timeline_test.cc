#include "core/fence/timeline.h"

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "core/fence/fence.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

using ::absl::StatusCode;

TEST(TimelineTest, ContextsAreUniqueAndNonZero) {
  Timeline a("a");
  Timeline b("b");
  EXPECT_NE(a.context(), 0u);
  EXPECT_NE(b.context(), 0u);
  EXPECT_NE(a.context(), b.context());
  EXPECT_EQ(a.name(), "a");
}

TEST(TimelineTest, AllocateFenceContextsReturnsConsecutiveFreshRange) {
  uint64_t first = AllocateFenceContexts(4);
  uint64_t next = AllocateFenceContexts();
  EXPECT_NE(first, 0u);
  EXPECT_GE(next, first + 4);
  Timeline t("t");
  EXPECT_GT(t.context(), next);
}

TEST(TimelineTest, AllocatingZeroContextsStillReturnsAFreshOne) {
  uint64_t a = AllocateFenceContexts(0);
  uint64_t b = AllocateFenceContexts(0);
  EXPECT_NE(a, b);
}

TEST(TimelineTest, AppendHandsOutIncreasingSeqnosAndLinksThePrevious) {
  Timeline t("evictions");
  EXPECT_EQ(t.last_fence(), nullptr);
  EXPECT_EQ(t.last_seqno(), 0u);

  Timeline::Link first = t.Append("e1");
  ASSERT_NE(first.fence, nullptr);
  EXPECT_EQ(first.previous, nullptr);
  EXPECT_EQ(first.fence->context(), t.context());
  EXPECT_EQ(first.fence->seqno(), 1u);
  EXPECT_EQ(first.fence->name(), "e1");
  EXPECT_FALSE(first.fence->IsSignaled());

  Timeline::Link second = t.Append("e2");
  EXPECT_EQ(second.previous, first.fence);
  EXPECT_EQ(second.fence->seqno(), 2u);
  EXPECT_EQ(t.last_fence(), second.fence);
  EXPECT_EQ(t.last_seqno(), 2u);

  ASSERT_TRUE(first.fence->Signal().ok());
  ASSERT_TRUE(second.fence->Signal().ok());
}

TEST(TimelineTest, IsLaterComparesSeqnos) {
  Timeline t("t");
  FenceRef a = t.Append("a").fence;
  FenceRef b = t.Append("b").fence;
  absl::StatusOr<bool> later = t.IsLater(*b, *a);
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE(*later);
  later = t.IsLater(*a, *b);
  ASSERT_TRUE(later.ok());
  EXPECT_FALSE(*later);
  later = t.IsLater(*a, *a);
  ASSERT_TRUE(later.ok());
  EXPECT_FALSE(*later);
  ASSERT_TRUE(a->Signal().ok());
  ASSERT_TRUE(b->Signal().ok());
}

TEST(TimelineTest, IsLaterRefusesFencesOfOtherContexts) {
  Timeline t("t");
  Timeline other("other");
  FenceRef mine = t.Append("mine").fence;
  FenceRef theirs = other.Append("theirs").fence;
  FenceRef unordered = Fence::Create("unordered");
  EXPECT_EQ(t.IsLater(*mine, *theirs).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(t.IsLater(*theirs, *mine).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(t.IsLater(*unordered, *mine).status().code(),
            StatusCode::kInvalidArgument);
  for (const FenceRef& f : {mine, theirs, unordered}) {
    ASSERT_TRUE(f->Signal().ok());
  }
}

TEST(TimelineTest, ConcurrentAppendsGetDistinctSeqnosAndConsistentLinks) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  Timeline t("t");
  std::vector<std::vector<Timeline::Link>> links(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&t, &links, i] {
      for (int j = 0; j < kPerThread; ++j) links[i].push_back(t.Append("x"));
    });
  }
  for (std::thread& th : threads) th.join();

  std::vector<uint64_t> seqnos;
  for (const auto& per_thread : links) {
    for (const Timeline::Link& link : per_thread) {
      seqnos.push_back(link.fence->seqno());
      // The previous fence is exactly the one with the seqno before.
      if (link.fence->seqno() == 1) {
        EXPECT_EQ(link.previous, nullptr);
      } else {
        ASSERT_NE(link.previous, nullptr);
        EXPECT_EQ(link.previous->seqno(), link.fence->seqno() - 1);
      }
    }
  }
  std::sort(seqnos.begin(), seqnos.end());
  for (size_t i = 0; i < seqnos.size(); ++i) EXPECT_EQ(seqnos[i], i + 1);
  EXPECT_EQ(t.last_seqno(), uint64_t{kThreads * kPerThread});
  EXPECT_EQ(t.last_fence()->seqno(), t.last_seqno());
  for (const auto& per_thread : links) {
    for (const Timeline::Link& link : per_thread) {
      ASSERT_TRUE(link.fence->Signal().ok());
    }
  }
}

}  // namespace
}  // namespace gpumig
