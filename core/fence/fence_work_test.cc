#include "core/fence/fence_work.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "core/fence/fence.h"
#include "core/fence/timeline.h"
#include "core/fence/work_queue.h"
#include "gtest/gtest.h"

// Test-only synchronisation uses std::mutex, atomics, thread joins and fences
// themselves: Debian's absl::Mutex is invisible to ThreadSanitizer.

namespace gpumig {
namespace {

using ::absl::StatusCode;

// Seed for randomised tests: $GPUMIG_TEST_SEED, else random. Printed so a
// failure can be replayed.
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

// Runs `fn` on a thread with a `stack_bytes` stack and joins it.
void RunWithStack(size_t stack_bytes, std::function<void()> fn) {
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, stack_bytes), 0);
  pthread_t thread;
  auto trampoline = [](void* arg) -> void* {
    (*static_cast<std::function<void()>*>(arg))();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attr, trampoline, &fn), 0);
  ASSERT_EQ(pthread_join(thread, nullptr), 0);
  pthread_attr_destroy(&attr);
}

std::unique_ptr<FenceWork> MakeWork(absl::string_view name,
                                    FenceWork::WorkFn work, WorkQueue* queue,
                                    Timeline* timeline = nullptr) {
  absl::StatusOr<std::unique_ptr<FenceWork>> created =
      FenceWork::Create(name, std::move(work), queue, timeline);
  EXPECT_TRUE(created.ok()) << created.status();
  return created.ok() ? *std::move(created) : nullptr;
}

// A work that records the error it received and returns `result(error)`.
struct Recorder {
  std::atomic<int> runs{0};
  absl::Status received;  // published to the test by the fence's signal
  std::thread::id thread;

  FenceWork::WorkFn Propagate() {
    return [this](absl::Status error) {
      Note(error);
      return error;
    };
  }
  FenceWork::WorkFn Consume() {
    return [this](absl::Status error) {
      Note(error);
      return absl::OkStatus();
    };
  }
  void Note(const absl::Status& error) {
    runs++;
    received = error;
    thread = std::this_thread::get_id();
  }
};

TEST(FenceWorkTest, WorkWithoutQueueIsInvalidArgument) {
  absl::StatusOr<std::unique_ptr<FenceWork>> created = FenceWork::Create(
      "w", [](absl::Status) { return absl::OkStatus(); }, nullptr);
  EXPECT_EQ(created.status().code(), StatusCode::kInvalidArgument);
}

TEST(FenceWorkTest, EmptyWorkIsCoalescingOnly) {
  WorkQueue queue("q", 1);
  std::unique_ptr<FenceWork> coalescing = FenceWork::CreateCoalescing("c");
  EXPECT_TRUE(coalescing->coalescing_only());
  absl::StatusOr<std::unique_ptr<FenceWork>> also =
      FenceWork::Create("c2", FenceWork::WorkFn(), nullptr);
  ASSERT_TRUE(also.ok());
  EXPECT_TRUE((*also)->coalescing_only());
  std::unique_ptr<FenceWork> real = MakeWork(
      "w", [](absl::Status) { return absl::OkStatus(); }, &queue);
  EXPECT_FALSE(real->coalescing_only());
  EXPECT_EQ(real->fence()->name(), "w");
  EXPECT_EQ(real->fence()->context(), 0u);
  for (auto* w : {coalescing.get(), also->get(), real.get()}) {
    ASSERT_TRUE(w->Commit().ok());
  }
  real->fence()->Wait();
}

TEST(FenceWorkTest, WorkRunsOnlyAfterAllDependenciesSignal) {
  WorkQueue queue("q", 1);
  Recorder rec;
  std::unique_ptr<FenceWork> work = MakeWork("w", rec.Propagate(), &queue);
  std::vector<FenceRef> deps = {Fence::Create("a"), Fence::Create("b"),
                                Fence::Create("c")};
  for (const FenceRef& d : deps) ASSERT_TRUE(work->Await(d).ok());
  ASSERT_TRUE(work->Commit().ok());
  ASSERT_TRUE(deps[0]->Signal().ok());
  ASSERT_TRUE(deps[1]->Signal().ok());
  EXPECT_FALSE(work->fence()->WaitFor(absl::Milliseconds(5)));
  EXPECT_EQ(rec.runs.load(), 0);
  ASSERT_TRUE(deps[2]->Signal().ok());
  work->fence()->Wait();
  EXPECT_EQ(rec.runs.load(), 1);
  EXPECT_TRUE(rec.received.ok());
  EXPECT_TRUE(work->fence()->error().ok());
}

TEST(FenceWorkTest, WorkRunsEvenWhenDependencyFailedAndGetsFirstError) {
  WorkQueue queue("q", 1);
  Recorder rec;
  std::unique_ptr<FenceWork> work = MakeWork("w", rec.Propagate(), &queue);
  FenceRef a = Fence::Create("a");
  FenceRef b = Fence::Create("b");
  FenceRef c = Fence::Create("c");
  for (const FenceRef& d : {a, b, c}) ASSERT_TRUE(work->Await(d).ok());
  ASSERT_TRUE(work->Commit().ok());
  ASSERT_TRUE(b->SignalWithError(absl::DataLossError("blit failed")).ok());
  ASSERT_TRUE(a->SignalWithError(absl::InternalError("later")).ok());
  ASSERT_TRUE(c->Signal().ok());
  work->fence()->Wait();
  EXPECT_EQ(rec.runs.load(), 1);
  EXPECT_EQ(rec.received, absl::DataLossError("blit failed"));
  // A propagating work returns the error: the fence carries it.
  EXPECT_EQ(work->fence()->error(), absl::DataLossError("blit failed"));
}

TEST(FenceWorkTest, AlreadySignalledFailedDependencyIsTheFirstError) {
  WorkQueue queue("q", 1);
  Recorder rec;
  std::unique_ptr<FenceWork> work = MakeWork("w", rec.Propagate(), &queue);
  FenceRef pending = Fence::Create("pending");
  ASSERT_TRUE(work->Await(Fence::CreateSignaled("ok")).ok());
  ASSERT_TRUE(
      work->Await(Fence::CreateSignaled("done", absl::DataLossError("early")))
          .ok());
  ASSERT_TRUE(work->Await(pending).ok());
  ASSERT_TRUE(work->Commit().ok());
  ASSERT_TRUE(pending->SignalWithError(absl::InternalError("late")).ok());
  work->fence()->Wait();
  EXPECT_EQ(rec.received, absl::DataLossError("early"));
}

TEST(FenceWorkTest, WorkConsumingTheErrorSignalsClean) {
  WorkQueue queue("q", 1);
  Recorder rec;
  std::unique_ptr<FenceWork> work = MakeWork("failsafe", rec.Consume(), &queue);
  FenceRef blit = Fence::Create("blit");
  ASSERT_TRUE(work->Await(blit).ok());
  ASSERT_TRUE(work->Commit().ok());
  ASSERT_TRUE(blit->SignalWithError(absl::DataLossError("blit failed")).ok());
  work->fence()->Wait();
  EXPECT_EQ(rec.received.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(work->fence()->error().ok());
}

TEST(FenceWorkTest, WorkResultBecomesTheFenceError) {
  WorkQueue queue("q", 1);
  std::unique_ptr<FenceWork> work = MakeWork(
      "w",
      [](absl::Status error) {
        EXPECT_TRUE(error.ok());
        return absl::ResourceExhaustedError("no room");
      },
      &queue);
  ASSERT_TRUE(work->Commit().ok());
  work->fence()->Wait();
  EXPECT_EQ(work->fence()->error().code(), StatusCode::kResourceExhausted);
}

TEST(FenceWorkTest, WorkCapturesAreReleasedBeforeTheSignal) {
  WorkQueue queue("q", 1);
  auto blocks = std::make_shared<int>(1);
  std::weak_ptr<int> weak = blocks;
  std::unique_ptr<FenceWork> work = MakeWork(
      "w", [blocks](absl::Status) { return absl::OkStatus(); }, &queue);
  blocks.reset();
  std::atomic<bool> released_at_signal{false};
  ASSERT_TRUE(work->fence()
                  ->AddCallback([&released_at_signal, weak](const Fence&) {
                    released_at_signal = weak.expired();
                  })
                  .ok());
  ASSERT_TRUE(work->Commit().ok());
  // The callback runs on the worker after the signal; joining the worker
  // orders it before the check.
  queue.Shutdown();
  EXPECT_TRUE(work->fence()->IsSignaled());
  EXPECT_TRUE(weak.expired());
  EXPECT_TRUE(released_at_signal.load());
}

TEST(FenceWorkTest, CoalescingPropagatesFirstDependencyError) {
  std::unique_ptr<FenceWork> work = FenceWork::CreateCoalescing("c");
  FenceRef a = Fence::Create("a");
  FenceRef b = Fence::Create("b");
  ASSERT_TRUE(work->Await(a).ok());
  ASSERT_TRUE(work->Await(b).ok());
  ASSERT_TRUE(work->Commit().ok());
  ASSERT_TRUE(b->SignalWithError(absl::DataLossError("first")).ok());
  EXPECT_FALSE(work->fence()->IsSignaled());
  ASSERT_TRUE(a->SignalWithError(absl::InternalError("second")).ok());
  EXPECT_TRUE(work->fence()->IsSignaled());
  EXPECT_EQ(work->fence()->error(), absl::DataLossError("first"));
}

TEST(FenceWorkTest, CoalescingSignalsCleanWhenDependenciesAreClean) {
  std::unique_ptr<FenceWork> work = FenceWork::CreateCoalescing("c");
  FenceRef a = Fence::Create("a");
  ASSERT_TRUE(work->Await(a).ok());
  ASSERT_TRUE(work->Commit().ok());
  ASSERT_TRUE(a->Signal().ok());
  EXPECT_TRUE(work->fence()->IsSignaled());
  EXPECT_TRUE(work->fence()->error().ok());
}

TEST(FenceWorkTest, CoalescingSignalsInlineOnTheSignallingThread) {
  std::unique_ptr<FenceWork> work = FenceWork::CreateCoalescing("c");
  FenceRef dep = Fence::Create("dep");
  ASSERT_TRUE(work->Await(dep).ok());
  ASSERT_TRUE(work->Commit().ok());
  std::thread::id callback_thread;
  ASSERT_TRUE(work->fence()
                  ->AddCallback([&callback_thread](const Fence&) {
                    callback_thread = std::this_thread::get_id();
                  })
                  .ok());
  std::thread::id signaller_thread;
  bool signalled_on_return = false;
  std::thread signaller([&] {
    signaller_thread = std::this_thread::get_id();
    ASSERT_TRUE(dep->Signal().ok());
    signalled_on_return = work->fence()->IsSignaled();
  });
  signaller.join();
  EXPECT_TRUE(signalled_on_return);
  EXPECT_EQ(callback_thread, signaller_thread);
}

TEST(FenceWorkTest, CommitWithNothingPendingSignalsCoalescingAtOnce) {
  std::unique_ptr<FenceWork> work = FenceWork::CreateCoalescing("c");
  ASSERT_TRUE(
      work->Await(Fence::CreateSignaled("x", absl::AbortedError("x"))).ok());
  ASSERT_TRUE(work->Commit().ok());
  EXPECT_TRUE(work->fence()->IsSignaled());
  EXPECT_EQ(work->fence()->error().code(), StatusCode::kAborted);
}

TEST(FenceWorkTest, AwaitNullIsInvalidArgument) {
  std::unique_ptr<FenceWork> work = FenceWork::CreateCoalescing("c");
  EXPECT_EQ(work->Await(nullptr).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(work->Commit().ok());
  EXPECT_TRUE(work->fence()->IsSignaled());
}

TEST(FenceWorkTest, AwaitingOwnFenceIsInvalidArgument) {
  std::unique_ptr<FenceWork> work = FenceWork::CreateCoalescing("c");
  EXPECT_EQ(work->Await(work->fence()).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(work->Commit().ok());
  EXPECT_TRUE(work->fence()->IsSignaled());
}

TEST(FenceWorkTest, AwaitingSameFenceTwiceIsAlreadyExistsAndChangesNothing) {
  WorkQueue queue("q", 1);
  Recorder rec;
  std::unique_ptr<FenceWork> work = MakeWork("w", rec.Propagate(), &queue);
  FenceRef dep = Fence::Create("dep");
  FenceRef done = Fence::CreateSignaled("done", absl::DataLossError("x"));
  ASSERT_TRUE(work->Await(dep).ok());
  EXPECT_EQ(work->Await(dep).code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(work->Await(done).ok());
  EXPECT_EQ(work->Await(done).code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(work->Commit().ok());
  ASSERT_TRUE(dep->Signal().ok());
  work->fence()->Wait();
  queue.Shutdown();
  EXPECT_EQ(rec.runs.load(), 1);
  EXPECT_EQ(rec.received.code(), StatusCode::kDataLoss);
}

TEST(FenceWorkTest, ManyDependenciesStillRefuseDuplicates) {
  std::unique_ptr<FenceWork> work = FenceWork::CreateCoalescing("c");
  std::vector<FenceRef> deps;
  for (int i = 0; i < 100; ++i) {
    deps.push_back(Fence::Create("dep"));
    ASSERT_TRUE(work->Await(deps.back()).ok());
  }
  for (int i : {0, 3, 15, 16, 17, 50, 99}) {
    EXPECT_EQ(work->Await(deps[i]).code(), StatusCode::kAlreadyExists) << i;
  }
  ASSERT_TRUE(work->Commit().ok());
  for (int i = 0; i < 99; ++i) ASSERT_TRUE(deps[i]->Signal().ok());
  EXPECT_FALSE(work->fence()->IsSignaled());
  ASSERT_TRUE(deps[99]->Signal().ok());
  EXPECT_TRUE(work->fence()->IsSignaled());
}

TEST(FenceWorkTest, AwaitAfterCommitIsFailedPrecondition) {
  std::unique_ptr<FenceWork> work = FenceWork::CreateCoalescing("c");
  FenceRef dep = Fence::Create("dep");
  ASSERT_TRUE(work->Await(dep).ok());
  ASSERT_TRUE(work->Commit().ok());
  FenceRef late = Fence::Create("late");
  EXPECT_EQ(work->Await(late).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(work->Await(nullptr).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(dep->Signal().ok());
  // The refused dependency was not awaited.
  EXPECT_TRUE(work->fence()->IsSignaled());
  ASSERT_TRUE(late->Signal().ok());
}

TEST(FenceWorkTest, CommitTwiceIsFailedPrecondition) {
  WorkQueue queue("q", 1);
  Recorder rec;
  std::unique_ptr<FenceWork> work = MakeWork("w", rec.Propagate(), &queue);
  ASSERT_TRUE(work->Commit().ok());
  EXPECT_EQ(work->Commit().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(work->CommitImmediate().code(), StatusCode::kFailedPrecondition);

  std::unique_ptr<FenceWork> imm = FenceWork::CreateCoalescing("c");
  ASSERT_TRUE(imm->CommitImmediate().ok());
  EXPECT_EQ(imm->Commit().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(imm->CommitImmediate().code(), StatusCode::kFailedPrecondition);

  work->fence()->Wait();
  queue.Shutdown();
  EXPECT_EQ(rec.runs.load(), 1);
}

TEST(FenceWorkTest, CommitImmediateRunsWorkInlineWhenNothingPending) {
  WorkQueue queue("q", 1);
  Recorder rec;
  std::unique_ptr<FenceWork> work = MakeWork("w", rec.Propagate(), &queue);
  ASSERT_TRUE(
      work->Await(Fence::CreateSignaled("done", absl::DataLossError("x")))
          .ok());
  ASSERT_TRUE(work->CommitImmediate().ok());
  EXPECT_TRUE(work->fence()->IsSignaled());
  EXPECT_EQ(rec.runs.load(), 1);
  EXPECT_EQ(rec.thread, std::this_thread::get_id());
  EXPECT_EQ(work->fence()->error().code(), StatusCode::kDataLoss);
}

TEST(FenceWorkTest, CommitImmediateWithPendingDependencyRunsOnTheQueue) {
  WorkQueue queue("q", 1);
  Recorder rec;
  std::unique_ptr<FenceWork> work = MakeWork("w", rec.Propagate(), &queue);
  FenceRef dep = Fence::Create("dep");
  ASSERT_TRUE(work->Await(dep).ok());
  ASSERT_TRUE(work->CommitImmediate().ok());
  EXPECT_FALSE(work->fence()->IsSignaled());
  ASSERT_TRUE(dep->Signal().ok());
  work->fence()->Wait();
  EXPECT_EQ(rec.runs.load(), 1);
  EXPECT_NE(rec.thread, std::this_thread::get_id());
}

TEST(FenceWorkTest, CommitWithNothingPendingRunsOnTheQueue) {
  WorkQueue queue("q", 1);
  Recorder rec;
  std::unique_ptr<FenceWork> work = MakeWork("w", rec.Propagate(), &queue);
  ASSERT_TRUE(work->Commit().ok());
  work->fence()->Wait();
  EXPECT_EQ(rec.runs.load(), 1);
  EXPECT_NE(rec.thread, std::this_thread::get_id());
}

TEST(FenceWorkTest, DestroyedBeforeCommitSignalsCancelledAndNeverRuns) {
  WorkQueue queue("q", 1);
  auto capture = std::make_shared<int>(0);
  std::weak_ptr<int> weak = capture;
  std::atomic<int> runs{0};
  FenceRef dep = Fence::Create("dep");
  FenceRef fence;
  {
    std::unique_ptr<FenceWork> work = MakeWork(
        "w",
        [capture, &runs](absl::Status) {
          runs++;
          return absl::OkStatus();
        },
        &queue);
    capture.reset();
    ASSERT_TRUE(work->Await(dep).ok());
    fence = work->fence();
  }
  EXPECT_TRUE(fence->IsSignaled());
  EXPECT_EQ(fence->error().code(), StatusCode::kCancelled);
  EXPECT_TRUE(weak.expired());  // the work's captures are gone already
  ASSERT_TRUE(dep->Signal().ok());
  queue.Shutdown();
  EXPECT_EQ(runs.load(), 0);
  EXPECT_EQ(fence->error().code(), StatusCode::kCancelled);
}

TEST(FenceWorkTest, DestroyedBeforeCommitWakesWaiters) {
  auto work = std::make_unique<std::unique_ptr<FenceWork>>(
      FenceWork::CreateCoalescing("c"));
  FenceRef fence = (*work)->fence();
  FenceRef dep = Fence::Create("dep");
  ASSERT_TRUE((*work)->Await(dep).ok());
  std::vector<std::thread> waiters;
  std::atomic<int> cancelled{0};
  for (int i = 0; i < 4; ++i) {
    waiters.emplace_back([fence, &cancelled] {
      fence->Wait();
      if (fence->error().code() == StatusCode::kCancelled) cancelled++;
    });
  }
  work.reset();
  for (std::thread& t : waiters) t.join();
  EXPECT_EQ(cancelled.load(), 4);
  ASSERT_TRUE(dep->Signal().ok());
}

TEST(FenceWorkTest, DestroyedAfterCommitStillRunsAndSignals) {
  WorkQueue queue("q", 1);
  Recorder rec;
  FenceRef dep = Fence::Create("dep");
  FenceRef fence;
  {
    std::unique_ptr<FenceWork> work = MakeWork("w", rec.Consume(), &queue);
    ASSERT_TRUE(work->Await(dep).ok());
    ASSERT_TRUE(work->Commit().ok());
    fence = work->fence();
  }
  ASSERT_TRUE(dep->SignalWithError(absl::DataLossError("x")).ok());
  fence->Wait();
  EXPECT_EQ(rec.runs.load(), 1);
  EXPECT_EQ(rec.received.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(fence->error().ok());
}

TEST(FenceWorkTest, QueueShutDownRunsWorkInlineOnCompletingThread) {
  WorkQueue queue("q", 1);
  Recorder rec;
  std::unique_ptr<FenceWork> work = MakeWork("w", rec.Propagate(), &queue);
  FenceRef dep = Fence::Create("dep");
  ASSERT_TRUE(work->Await(dep).ok());
  ASSERT_TRUE(work->Commit().ok());
  queue.Shutdown();
  ASSERT_TRUE(dep->SignalWithError(absl::DataLossError("x")).ok());
  EXPECT_TRUE(work->fence()->IsSignaled());
  EXPECT_EQ(rec.runs.load(), 1);
  EXPECT_EQ(rec.thread, std::this_thread::get_id());
  EXPECT_EQ(work->fence()->error().code(), StatusCode::kDataLoss);
}

TEST(FenceWorkTest, DependencyReleasedUnsignalledGivesWorkAborted) {
  WorkQueue queue("q", 1);
  Recorder rec;
  std::unique_ptr<FenceWork> work = MakeWork("w", rec.Propagate(), &queue);
  {
    FenceRef dep = Fence::Create("dropped");
    ASSERT_TRUE(work->Await(dep).ok());
  }  // the work does not keep its dependencies alive
  ASSERT_TRUE(work->Commit().ok());
  work->fence()->Wait();
  EXPECT_EQ(rec.received.code(), StatusCode::kAborted);
  EXPECT_EQ(work->fence()->error().code(), StatusCode::kAborted);
}

TEST(FenceWorkTest, TimelineFenceCarriesContextAndNextSeqno) {
  Timeline timeline("region0");
  std::unique_ptr<FenceWork> a = FenceWork::CreateCoalescing("a", &timeline);
  std::unique_ptr<FenceWork> b = FenceWork::CreateCoalescing("b", &timeline);
  EXPECT_EQ(a->fence()->context(), timeline.context());
  EXPECT_EQ(a->fence()->seqno(), 1u);
  EXPECT_EQ(b->fence()->seqno(), 2u);
  EXPECT_EQ(timeline.last_fence(), b->fence());
  absl::StatusOr<bool> later = timeline.IsLater(*b->fence(), *a->fence());
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE(*later);
  ASSERT_TRUE(b->Commit().ok());
  EXPECT_FALSE(b->fence()->IsSignaled());  // waits for a
  ASSERT_TRUE(a->Commit().ok());
  EXPECT_TRUE(a->fence()->IsSignaled());
  EXPECT_TRUE(b->fence()->IsSignaled());
}

TEST(FenceWorkTest, TimelineDoesNotInheritPreviousError) {
  WorkQueue queue("q", 1);
  Timeline timeline("evictions");
  Recorder second_rec;
  std::unique_ptr<FenceWork> first =
      FenceWork::CreateCoalescing("e1", &timeline);
  std::unique_ptr<FenceWork> second =
      MakeWork("e2", second_rec.Propagate(), &queue, &timeline);
  std::unique_ptr<FenceWork> third =
      FenceWork::CreateCoalescing("e3", &timeline);
  FenceRef failed_blit = Fence::Create("blit");
  ASSERT_TRUE(first->Await(failed_blit).ok());
  for (auto* w : {first.get(), second.get(), third.get()}) {
    ASSERT_TRUE(w->Commit().ok());
  }
  ASSERT_TRUE(failed_blit->SignalWithError(absl::DataLossError("x")).ok());
  third->fence()->Wait();
  EXPECT_EQ(first->fence()->error().code(), StatusCode::kDataLoss);
  EXPECT_TRUE(second_rec.received.ok());
  EXPECT_TRUE(second->fence()->error().ok());
  EXPECT_TRUE(third->fence()->error().ok());
}

TEST(FenceWorkTest, ExplicitlyAwaitedPreviousTimelineFenceFoldsItsError) {
  Timeline timeline("t");
  std::unique_ptr<FenceWork> first =
      FenceWork::CreateCoalescing("a", &timeline);
  std::unique_ptr<FenceWork> second =
      FenceWork::CreateCoalescing("b", &timeline);
  FenceRef blit = Fence::Create("blit");
  ASSERT_TRUE(first->Await(blit).ok());
  // Ordering-only is implicit; awaiting it as a real dependency is allowed.
  ASSERT_TRUE(second->Await(first->fence()).ok());
  ASSERT_TRUE(first->Commit().ok());
  ASSERT_TRUE(second->Commit().ok());
  ASSERT_TRUE(blit->SignalWithError(absl::DataLossError("x")).ok());
  EXPECT_EQ(second->fence()->error().code(), StatusCode::kDataLoss);
}

TEST(FenceWorkTest, TimelineSignalsInSeqnoOrderWhenDependenciesFinishReversed) {
  Timeline timeline("t");
  std::vector<uint64_t> order;
  std::vector<std::unique_ptr<FenceWork>> works;
  std::vector<FenceRef> deps;
  for (int i = 0; i < 3; ++i) {
    works.push_back(FenceWork::CreateCoalescing("w", &timeline));
    deps.push_back(Fence::Create("dep"));
    ASSERT_TRUE(works.back()->Await(deps.back()).ok());
    ASSERT_TRUE(works.back()
                    ->fence()
                    ->AddCallback([&order](const Fence& f) {
                      order.push_back(f.seqno());
                    })
                    .ok());
    ASSERT_TRUE(works.back()->Commit().ok());
  }
  ASSERT_TRUE(deps[2]->Signal().ok());
  ASSERT_TRUE(deps[1]->Signal().ok());
  EXPECT_TRUE(order.empty());
  ASSERT_TRUE(deps[0]->Signal().ok());
  EXPECT_EQ(order, (std::vector<uint64_t>{1, 2, 3}));
}

TEST(FenceWorkTest, CancelledTimelineWorkSignalsAfterItsPrevious) {
  Timeline timeline("t");
  std::unique_ptr<FenceWork> first =
      FenceWork::CreateCoalescing("a", &timeline);
  FenceRef blit = Fence::Create("blit");
  ASSERT_TRUE(first->Await(blit).ok());
  ASSERT_TRUE(first->Commit().ok());
  FenceRef cancelled;
  {
    std::unique_ptr<FenceWork> second =
        FenceWork::CreateCoalescing("b", &timeline);
    cancelled = second->fence();
  }
  EXPECT_FALSE(cancelled->IsSignaled());  // would overtake seqno 1
  ASSERT_TRUE(blit->Signal().ok());
  EXPECT_TRUE(first->fence()->IsSignaled());
  EXPECT_TRUE(cancelled->IsSignaled());
  EXPECT_EQ(cancelled->error().code(), StatusCode::kCancelled);
}

// 10,000 fence works on one timeline, half coalescing and half queued, each
// with its own dependency; the dependencies are signalled in random order by
// four threads. The fences must signal in seqno order.
TEST(FenceWorkTest, TimelineSignalsInSeqnoOrderUnderRandomCompletion) {
  const uint32_t seed = TestSeed();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  constexpr int kWorks = 10000;
  constexpr int kSignallers = 4;

  WorkQueue queue("tl", 2);
  Timeline timeline("t");
  std::mutex order_mu;
  std::vector<uint64_t> order;
  order.reserve(kWorks);
  std::vector<int> work_runs(kWorks, 0);  // each slot written by its work
  std::vector<bool> queued(kWorks, false);
  FenceRef all_recorded = Fence::Create("all recorded");
  std::vector<FenceRef> deps;
  std::vector<std::unique_ptr<FenceWork>> works;
  for (int i = 0; i < kWorks; ++i) {
    std::unique_ptr<FenceWork> work;
    if (rng() % 2 == 0) {
      work = FenceWork::CreateCoalescing("c", &timeline);
    } else {
      queued[i] = true;
      work = MakeWork(
          "q",
          [&work_runs, i](absl::Status error) {
            ++work_runs[i];
            return error;
          },
          &queue, &timeline);
    }
    deps.push_back(Fence::Create("dep"));
    ASSERT_TRUE(work->Await(deps.back()).ok());
    // Added before the next work exists, so it runs before the next fence's
    // ordering callback.
    bool last = i == kWorks - 1;
    ASSERT_TRUE(work->fence()
                    ->AddCallback([&, last](const Fence& f) {
                      {
                        std::lock_guard<std::mutex> lock(order_mu);
                        order.push_back(f.seqno());
                      }
                      if (last) {
                        EXPECT_TRUE(all_recorded->Signal().ok());
                      }
                    })
                    .ok());
    ASSERT_TRUE(work->Commit().ok());
    works.push_back(std::move(work));
  }

  std::vector<int> permutation(kWorks);
  for (int i = 0; i < kWorks; ++i) permutation[i] = i;
  std::shuffle(permutation.begin(), permutation.end(), rng);
  std::vector<std::thread> signallers;
  for (int t = 0; t < kSignallers; ++t) {
    signallers.emplace_back([&, t] {
      for (int i = t; i < kWorks; i += kSignallers) {
        EXPECT_TRUE(deps[permutation[i]]->Signal().ok());
      }
    });
  }
  for (std::thread& t : signallers) t.join();
  all_recorded->Wait();

  std::lock_guard<std::mutex> lock(order_mu);
  ASSERT_EQ(order.size(), size_t{kWorks});
  for (int i = 0; i < kWorks; ++i) {
    ASSERT_EQ(order[i], uint64_t(i + 1)) << "at position " << i;
  }
  for (int i = 0; i < kWorks; ++i) {
    EXPECT_EQ(work_runs[i], queued[i] ? 1 : 0) << i;
    EXPECT_TRUE(works[i]->fence()->IsSignaled());
  }
}

// A chain of coalescing fence works, each awaiting the previous one's fence;
// returns the spread of frame addresses seen by callbacks on every
// `probe_every`-th fence (0: none).
uintptr_t RunCoalescingChain(int length, bool drop_works, int probe_every) {
  FenceRef root = Fence::Create("root");
  FenceRef previous = root;
  std::vector<std::unique_ptr<FenceWork>> works;
  uintptr_t lowest = UINTPTR_MAX;
  uintptr_t highest = 0;
  for (int i = 0; i < length; ++i) {
    std::unique_ptr<FenceWork> work = FenceWork::CreateCoalescing("link");
    EXPECT_TRUE(work->Await(previous).ok());
    EXPECT_TRUE(work->Commit().ok());
    if (probe_every > 0 && i % probe_every == 0) {
      EXPECT_TRUE(work->fence()
                      ->AddCallback([&lowest, &highest](const Fence&) {
                        auto frame = reinterpret_cast<uintptr_t>(
                            __builtin_frame_address(0));
                        lowest = std::min(lowest, frame);
                        highest = std::max(highest, frame);
                      })
                      .ok());
    }
    previous = work->fence();
    if (!drop_works) works.push_back(std::move(work));
  }
  FenceRef last = previous;
  previous = nullptr;
  int last_runs = 0;
  EXPECT_TRUE(
      last->AddCallback([&last_runs](const Fence&) { ++last_runs; }).ok());
  EXPECT_TRUE(root->SignalWithError(absl::DataLossError("root")).ok());
  EXPECT_TRUE(last->IsSignaled());
  EXPECT_EQ(last->error(), absl::DataLossError("root"));
  EXPECT_EQ(last_runs, 1);
  return highest >= lowest ? highest - lowest : 0;
}

TEST(FenceWorkTest, CoalescingChainOf100000CompletesOnSmallStack) {
  // The works are dropped after commit, so each fence is owned only through
  // the previous fence's callback: completion must not cascade either.
  RunWithStack(256 * 1024, [] {
    RunCoalescingChain(100000, /*drop_works=*/true, /*probe_every=*/0);
  });
}

TEST(FenceWorkTest, CoalescingChainRunsAtConstantStackDepth) {
  uintptr_t spread =
      RunCoalescingChain(10000, /*drop_works=*/false, /*probe_every=*/10);
  EXPECT_LT(spread, 16 * 1024u);
}

TEST(FenceWorkTest, UnsignalledChainReleasedCompletesOnSmallStack) {
  // Dropping the root unsignalled force-signals it; the chain follows.
  RunWithStack(256 * 1024, [] {
    FenceRef last;
    {
      FenceRef root = Fence::Create("root");
      FenceRef previous = root;
      for (int i = 0; i < 100000; ++i) {
        std::unique_ptr<FenceWork> work = FenceWork::CreateCoalescing("link");
        ASSERT_TRUE(work->Await(previous).ok());
        ASSERT_TRUE(work->Commit().ok());
        previous = work->fence();
      }
      last = previous;
    }
    EXPECT_TRUE(last->IsSignaled());
    EXPECT_EQ(last->error().code(), StatusCode::kAborted);
  });
}

// Many works with random overlapping dependencies signalled concurrently:
// every work and every callback runs exactly once, and each work gets an
// error exactly when one of its dependencies failed.
TEST(FenceWorkTest, NoWorkOrCallbackRunsTwiceUnderConcurrentSignals) {
  const uint32_t seed = TestSeed();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  constexpr int kDeps = 400;
  constexpr int kWorks = 1000;
  constexpr int kSignallers = 4;

  WorkQueue queue("q", 2);
  std::vector<FenceRef> deps;
  std::vector<bool> dep_fails(kDeps);
  for (int i = 0; i < kDeps; ++i) {
    deps.push_back(Fence::Create("dep"));
    dep_fails[i] = rng() % 8 == 0;
  }
  std::vector<std::atomic<int>> work_runs(kWorks);
  std::vector<std::atomic<int>> callback_runs(kWorks);
  std::vector<bool> expect_error(kWorks, false);
  std::vector<std::unique_ptr<FenceWork>> works;
  for (int w = 0; w < kWorks; ++w) {
    std::unique_ptr<FenceWork> work;
    if (rng() % 2 == 0) {
      work = FenceWork::CreateCoalescing("c");
    } else {
      work = MakeWork(
          "q",
          [&work_runs, w](absl::Status error) {
            work_runs[w]++;
            return error;
          },
          &queue);
    }
    int n = 1 + rng() % 4;
    for (int k = 0; k < n; ++k) {
      int d = rng() % kDeps;
      absl::Status s = work->Await(deps[d]);
      if (s.ok()) {
        expect_error[w] = expect_error[w] || dep_fails[d];
      } else {
        EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
      }
    }
    ASSERT_TRUE(work->fence()
                    ->AddCallback([&callback_runs, w](const Fence&) {
                      callback_runs[w]++;
                    })
                    .ok());
    if (rng() % 2 == 0) {
      ASSERT_TRUE(work->Commit().ok());
    } else {
      ASSERT_TRUE(work->CommitImmediate().ok());
    }
    works.push_back(std::move(work));
  }
  std::vector<int> permutation(kDeps);
  for (int i = 0; i < kDeps; ++i) permutation[i] = i;
  std::shuffle(permutation.begin(), permutation.end(), rng);
  std::vector<std::thread> signallers;
  for (int t = 0; t < kSignallers; ++t) {
    signallers.emplace_back([&, t] {
      for (int i = t; i < kDeps; i += kSignallers) {
        int d = permutation[i];
        absl::Status error =
            dep_fails[d] ? absl::DataLossError("dep failed") : absl::OkStatus();
        EXPECT_TRUE(deps[d]->SignalWithError(error).ok());
      }
    });
  }
  for (std::thread& t : signallers) t.join();
  queue.Shutdown();  // every queued work has run
  for (int w = 0; w < kWorks; ++w) {
    ASSERT_TRUE(works[w]->fence()->IsSignaled()) << w;
    EXPECT_EQ(callback_runs[w].load(), 1) << w;
    if (!works[w]->coalescing_only()) {
      EXPECT_EQ(work_runs[w].load(), 1) << w;
    }
    EXPECT_EQ(works[w]->fence()->error().code(),
              expect_error[w] ? StatusCode::kDataLoss : StatusCode::kOk)
        << w;
  }
}

}  // namespace
}  // namespace gpumig

namespace gpumig {
namespace {

TEST(FenceWorkInlineTest, RunsInCompletingThreadWhenNoError) {
  WorkQueue queue("inline-test", 1);
  FenceRef dep = Fence::Create("dep");
  std::thread::id ran_on;
  auto work = FenceWork::Create(
      "w",
      [&ran_on](absl::Status) {
        ran_on = std::this_thread::get_id();
        return absl::OkStatus();
      },
      &queue);
  ASSERT_TRUE(work.ok());
  ASSERT_TRUE((*work)->RunInlineWhenNoError().ok());
  ASSERT_TRUE((*work)->Await(dep).ok());
  ASSERT_TRUE((*work)->Commit().ok());
  ASSERT_TRUE(dep->Signal().ok());
  // Signalled inline: already done when Signal() returns.
  EXPECT_TRUE((*work)->fence()->IsSignaled());
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(FenceWorkInlineTest, HopsToQueueWhenDependencyFailed) {
  WorkQueue queue("inline-test", 1);
  FenceRef dep = Fence::Create("dep");
  std::atomic<bool> on_caller{true};
  const std::thread::id caller = std::this_thread::get_id();
  auto work = FenceWork::Create(
      "w",
      [&](absl::Status error) {
        on_caller = std::this_thread::get_id() == caller;
        return error;
      },
      &queue);
  ASSERT_TRUE(work.ok());
  ASSERT_TRUE((*work)->RunInlineWhenNoError().ok());
  ASSERT_TRUE((*work)->Await(dep).ok());
  ASSERT_TRUE((*work)->Commit().ok());
  ASSERT_TRUE(dep->SignalWithError(absl::InternalError("blit")).ok());
  FenceRef f = (*work)->fence();
  ASSERT_TRUE(f->WaitFor(absl::Seconds(30)));
  EXPECT_FALSE(on_caller.load());
  EXPECT_EQ(f->error().code(), absl::StatusCode::kInternal);
}

TEST(FenceWorkInlineTest, RefusedAfterCommit) {
  WorkQueue queue("inline-test", 1);
  auto work = FenceWork::Create(
      "w", [](absl::Status) { return absl::OkStatus(); }, &queue);
  ASSERT_TRUE(work.ok());
  ASSERT_TRUE((*work)->Commit().ok());
  EXPECT_EQ((*work)->RunInlineWhenNoError().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace gpumig
