#include "core/fence/work_queue.h"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

// Test-only synchronisation uses std::mutex, atomics and joins: Debian's
// absl::Mutex is invisible to ThreadSanitizer.

namespace gpumig {
namespace {

using ::absl::StatusCode;

// A one-shot gate a task can block on.
class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Pass() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

TEST(WorkQueueTest, RunsTasksInFifoOrder) {
  std::vector<int> order;
  {
    WorkQueue queue("fifo", 1);
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(queue.Submit([&order, i] { order.push_back(i); }).ok());
    }
    queue.Shutdown();
  }
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(WorkQueueTest, SubmitEmptyTaskIsInvalidArgument) {
  WorkQueue queue("q", 1);
  EXPECT_EQ(queue.Submit(WorkQueue::Task()).code(),
            StatusCode::kInvalidArgument);
}

TEST(WorkQueueTest, SubmitAfterShutdownIsUnavailableAndDropsTask) {
  WorkQueue queue("q", 2);
  queue.Shutdown();
  auto captured = std::make_shared<int>(0);
  std::weak_ptr<int> weak = captured;
  bool ran = false;
  absl::Status s = queue.Submit([&ran, captured] { ran = true; });
  captured.reset();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_FALSE(ran);
  EXPECT_TRUE(weak.expired());  // dropped, not kept
}

TEST(WorkQueueTest, ShutdownDrainsQueuedTasks) {
  WorkQueue queue("q", 1);
  Gate gate;
  std::atomic<int> ran{0};
  ASSERT_TRUE(queue.Submit([&gate] { gate.Pass(); }).ok());
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(queue.Submit([&ran] { ran++; }).ok());
  }
  std::thread shutter([&queue] { queue.Shutdown(); });
  // Wait until shutdown has begun (submissions refused), then unblock.
  int accepted_late = 0;
  while (true) {
    absl::Status s = queue.Submit([&ran] { ran++; });
    if (!s.ok()) {
      EXPECT_EQ(s.code(), StatusCode::kUnavailable);
      break;
    }
    ++accepted_late;
    std::this_thread::yield();
  }
  gate.Open();
  shutter.join();
  EXPECT_EQ(ran.load(), 50 + accepted_late);
  EXPECT_EQ(queue.pending(), 0u);
}

TEST(WorkQueueTest, PendingCountsQueuedNotStartedTasks) {
  WorkQueue queue("q", 1);
  Gate gate;
  std::atomic<bool> started{false};
  ASSERT_TRUE(queue
                  .Submit([&] {
                    started = true;
                    gate.Pass();
                  })
                  .ok());
  while (!started) std::this_thread::yield();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(queue.Submit([] {}).ok());
  EXPECT_EQ(queue.pending(), 5u);
  gate.Open();
  queue.Shutdown();
  EXPECT_EQ(queue.pending(), 0u);
}

TEST(WorkQueueTest, ShutdownIsIdempotentAndDestructorShutsDown) {
  std::atomic<int> ran{0};
  {
    WorkQueue queue("q", 2);
    ASSERT_TRUE(queue.Submit([&ran] { ran++; }).ok());
    queue.Shutdown();
    queue.Shutdown();
    EXPECT_EQ(ran.load(), 1);
  }
  {
    WorkQueue queue("q", 2);
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(queue.Submit([&ran] { ran++; }).ok());
    }
  }  // destructor drains
  EXPECT_EQ(ran.load(), 11);
}

TEST(WorkQueueTest, ConcurrentShutdownsJoinOnce) {
  WorkQueue queue("q", 3);
  std::atomic<int> ran{0};
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(queue.Submit([&] { ran++; }).ok());
  std::thread a([&] { queue.Shutdown(); });
  std::thread b([&] { queue.Shutdown(); });
  a.join();
  b.join();
  EXPECT_EQ(ran.load(), 20);
}

TEST(WorkQueueTest, ThreadCountBelowOneIsRaisedToOne) {
  std::atomic<int> ran{0};
  {
    WorkQueue queue("q", 0);
    ASSERT_TRUE(queue.Submit([&ran] { ran++; }).ok());
  }
  {
    WorkQueue queue("q", -3);
    ASSERT_TRUE(queue.Submit([&ran] { ran++; }).ok());
  }
  EXPECT_EQ(ran.load(), 2);
}

TEST(WorkQueueTest, EveryTaskFromManySubmittersRunsExactlyOnce) {
  constexpr int kSubmitters = 4;
  constexpr int kPerSubmitter = 1000;
  std::vector<std::atomic<int>> runs(kSubmitters * kPerSubmitter);
  {
    WorkQueue queue("q", 3);
    std::vector<std::thread> submitters;
    for (int t = 0; t < kSubmitters; ++t) {
      submitters.emplace_back([&, t] {
        for (int i = 0; i < kPerSubmitter; ++i) {
          int slot = t * kPerSubmitter + i;
          EXPECT_TRUE(queue.Submit([&runs, slot] { runs[slot]++; }).ok());
        }
      });
    }
    for (std::thread& s : submitters) s.join();
  }
  for (auto& r : runs) EXPECT_EQ(r.load(), 1);
}

TEST(WorkQueueTest, TasksMaySubmitMoreTasks) {
  std::atomic<int> ran{0};
  {
    WorkQueue queue("q", 2);
    ASSERT_TRUE(queue
                    .Submit([&] {
                      ran++;
                      EXPECT_TRUE(queue.Submit([&] { ran++; }).ok());
                    })
                    .ok());
    // Wait for both before shutting down: a task submitting during the
    // drain would be refused.
    while (ran.load() < 2) std::this_thread::yield();
  }
  EXPECT_EQ(ran.load(), 2);
}

}  // namespace
}  // namespace gpumig
