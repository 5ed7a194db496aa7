#include "core/fence/fence.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

// Test-only synchronisation uses std::mutex, atomics, thread joins and fences
// themselves: Debian's absl::Mutex is invisible to ThreadSanitizer.

namespace gpumig {
namespace {

using ::absl::StatusCode;

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

TEST(FenceTest, IdsAreUniqueAndNonZero) {
  FenceRef a = Fence::Create("a");
  FenceRef b = Fence::Create("b");
  EXPECT_NE(a->id(), 0u);
  EXPECT_NE(b->id(), 0u);
  EXPECT_NE(a->id(), b->id());
}

TEST(FenceTest, CreateRecordsNameContextAndSeqno) {
  FenceRef f = Fence::Create("blit", 7, 42);
  EXPECT_EQ(f->name(), "blit");
  EXPECT_EQ(f->context(), 7u);
  EXPECT_EQ(f->seqno(), 42u);
  EXPECT_FALSE(f->IsSignaled());
  EXPECT_TRUE(f->error().ok());
  EXPECT_EQ(f->signal_time(), absl::InfinitePast());
  EXPECT_LE(f->create_time(), absl::Now());
  ASSERT_TRUE(f->Signal().ok());
}

TEST(FenceTest, SignalSetsStateAndTime) {
  FenceRef f = Fence::Create("f");
  ASSERT_TRUE(f->Signal().ok());
  EXPECT_TRUE(f->IsSignaled());
  EXPECT_TRUE(f->error().ok());
  EXPECT_NE(f->signal_time(), absl::InfinitePast());
  EXPECT_GE(f->signal_time(), f->create_time());
}

TEST(FenceTest, CallbacksRunInOrderAdded) {
  FenceRef f = Fence::Create("f");
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        f->AddCallback([&order, i](const Fence&) { order.push_back(i); }).ok());
  }
  EXPECT_TRUE(order.empty());
  ASSERT_TRUE(f->Signal().ok());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(FenceTest, CallbackSeesSignalledFenceWithFinalError) {
  FenceRef f = Fence::Create("f");
  bool ran = false;
  ASSERT_TRUE(f->AddCallback([&ran](const Fence& fence) {
                 ran = true;
                 // These take the fence's lock: callbacks run outside it.
                 EXPECT_TRUE(fence.IsSignaled());
                 EXPECT_EQ(fence.error().code(), StatusCode::kDataLoss);
                 EXPECT_NE(fence.signal_time(), absl::InfinitePast());
               }).ok());
  ASSERT_TRUE(f->SignalWithError(absl::DataLossError("blit failed")).ok());
  EXPECT_TRUE(ran);
}

TEST(FenceTest, SecondSignalFailsAndChangesNothing) {
  FenceRef f = Fence::Create("f");
  int runs = 0;
  ASSERT_TRUE(f->AddCallback([&runs](const Fence&) { ++runs; }).ok());
  ASSERT_TRUE(f->SignalWithError(absl::InternalError("first")).ok());
  absl::Time first_time = f->signal_time();

  absl::Status again = f->Signal();
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(again.message(), "already signalled");
  absl::Status again_with_error =
      f->SignalWithError(absl::UnavailableError("second"));
  EXPECT_EQ(again_with_error.code(), StatusCode::kFailedPrecondition);

  EXPECT_EQ(runs, 1);
  EXPECT_EQ(f->error(), absl::InternalError("first"));
  EXPECT_EQ(f->signal_time(), first_time);
}

TEST(FenceTest, FirstSetErrorWins) {
  FenceRef f = Fence::Create("f");
  ASSERT_TRUE(f->SetError(absl::DataLossError("first")).ok());
  ASSERT_TRUE(f->SetError(absl::InternalError("second")).ok());
  ASSERT_TRUE(f->SignalWithError(absl::AbortedError("third")).ok());
  EXPECT_EQ(f->error(), absl::DataLossError("first"));
}

TEST(FenceTest, ErrorIsOkUntilSignalled) {
  FenceRef f = Fence::Create("f");
  ASSERT_TRUE(f->SetError(absl::DataLossError("pending")).ok());
  EXPECT_TRUE(f->error().ok());
  ASSERT_TRUE(f->Signal().ok());
  EXPECT_EQ(f->error().code(), StatusCode::kDataLoss);
}

TEST(FenceTest, SetErrorWithOkIsInvalidArgument) {
  FenceRef f = Fence::Create("f");
  EXPECT_EQ(f->SetError(absl::OkStatus()).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(f->Signal().ok());
  EXPECT_TRUE(f->error().ok());
}

TEST(FenceTest, SetErrorAfterSignalFailsAndErrorNeverChanges) {
  FenceRef f = Fence::Create("f");
  ASSERT_TRUE(f->Signal().ok());
  absl::Status s = f->SetError(absl::DataLossError("late"));
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(f->error().ok());
}

TEST(FenceTest, AddCallbackAfterSignalFailsAndDoesNotRun) {
  FenceRef f = Fence::Create("f");
  ASSERT_TRUE(f->Signal().ok());
  bool ran = false;
  absl::Status s = f->AddCallback([&ran](const Fence&) { ran = true; });
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "already signalled");
  EXPECT_FALSE(ran);
}

TEST(FenceTest, AddEmptyCallbackIsInvalidArgument) {
  FenceRef f = Fence::Create("f");
  EXPECT_EQ(f->AddCallback(Fence::Callback()).code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(f->Signal().ok());
}

TEST(FenceTest, CreateSignaledCarriesError) {
  FenceRef ok = Fence::CreateSignaled("ok");
  EXPECT_TRUE(ok->IsSignaled());
  EXPECT_TRUE(ok->error().ok());
  EXPECT_EQ(ok->context(), 0u);

  FenceRef failed =
      Fence::CreateSignaled("failed", absl::DataLossError("no data"));
  EXPECT_TRUE(failed->IsSignaled());
  EXPECT_EQ(failed->error().code(), StatusCode::kDataLoss);
  EXPECT_EQ(failed->Signal().code(), StatusCode::kFailedPrecondition);
}

TEST(FenceTest, ReleasedUnsignalledRunsPendingCallbacksWithAborted) {
  std::vector<absl::Status> seen;
  std::vector<uint64_t> ids;
  uint64_t id;
  {
    FenceRef f = Fence::Create("dropped");
    id = f->id();
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(f->AddCallback([&](const Fence& fence) {
                     EXPECT_TRUE(fence.IsSignaled());
                     seen.push_back(fence.error());
                     ids.push_back(fence.id());
                   }).ok());
    }
  }
  ASSERT_EQ(seen.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(seen[i].code(), StatusCode::kAborted);
    EXPECT_EQ(seen[i].message(), "fence released unsignalled");
    EXPECT_EQ(ids[i], id);
  }
}

TEST(FenceTest, ReleasedUnsignalledKeepsEarlierError) {
  absl::Status seen;
  {
    FenceRef f = Fence::Create("dropped");
    ASSERT_TRUE(f->SetError(absl::DataLossError("blit failed")).ok());
    ASSERT_TRUE(f->AddCallback([&seen](const Fence& fence) {
                   seen = fence.error();
                 }).ok());
  }
  EXPECT_EQ(seen, absl::DataLossError("blit failed"));
}

TEST(FenceTest, ReleasedSignalledRunsNothingAgain) {
  int runs = 0;
  {
    FenceRef f = Fence::Create("f");
    ASSERT_TRUE(f->AddCallback([&runs](const Fence&) { ++runs; }).ok());
    ASSERT_TRUE(f->Signal().ok());
  }
  EXPECT_EQ(runs, 1);
}

TEST(FenceTest, CallbackDroppingLastReferenceIsSafe) {
  // The only reference lives in a holder that the first callback clears; the
  // later callbacks still get a live fence.
  auto holder = std::make_shared<FenceRef>(Fence::Create("f"));
  Fence* raw = holder->get();
  std::vector<std::string> names;
  ASSERT_TRUE(
      raw->AddCallback([holder](const Fence&) { holder->reset(); }).ok());
  ASSERT_TRUE(raw->AddCallback([&names](const Fence& fence) {
                   names.push_back(fence.name());
                 })
                  .ok());
  FenceRef keep = *holder;  // a reference for the call itself
  std::weak_ptr<Fence> weak = keep;
  Fence* signaller = keep.get();
  keep.reset();
  holder.reset();  // now only the fence's own callback holds `holder`
  ASSERT_TRUE(signaller->Signal().ok());
  EXPECT_EQ(names, std::vector<std::string>{"f"});
  EXPECT_TRUE(weak.expired());
}

TEST(FenceTest, CallbackDroppingUnsignalledFenceRunsItsCallbacks) {
  FenceRef outer = Fence::Create("outer");
  auto inner = std::make_shared<FenceRef>(Fence::Create("inner"));
  std::vector<std::string> order;
  ASSERT_TRUE((*inner)
                  ->AddCallback([&order](const Fence& f) {
                    EXPECT_EQ(f.error().code(), StatusCode::kAborted);
                    order.push_back("inner");
                  })
                  .ok());
  ASSERT_TRUE(outer
                  ->AddCallback([inner, &order](const Fence&) {
                    order.push_back("outer");
                    inner->reset();  // released unsignalled, mid-dispatch
                  })
                  .ok());
  inner.reset();
  ASSERT_TRUE(outer->Signal().ok());
  EXPECT_EQ(order, (std::vector<std::string>{"outer", "inner"}));
}

TEST(FenceTest, NestedSignalRunsAfterTheCurrentBatch) {
  FenceRef a = Fence::Create("a");
  FenceRef b = Fence::Create("b");
  std::vector<std::string> order;
  ASSERT_TRUE(
      b->AddCallback([&order](const Fence&) { order.push_back("b"); }).ok());
  ASSERT_TRUE(a->AddCallback([&order, b](const Fence&) {
                 order.push_back("a1");
                 EXPECT_TRUE(b->Signal().ok());
                 // Queued, not run in this frame.
                 order.push_back("a1 after signal");
               }).ok());
  ASSERT_TRUE(a->AddCallback([&order, b](const Fence&) {
                 EXPECT_TRUE(b->IsSignaled());
                 order.push_back("a2");
               }).ok());
  ASSERT_TRUE(a->Signal().ok());
  EXPECT_EQ(order,
            (std::vector<std::string>{"a1", "a1 after signal", "a2", "b"}));
}

// Each fence's callback signals the next; the dispatcher must run them
// iteratively. The frame address spread shows bounded depth.
void RunSignalChain(int length) {
  std::vector<FenceRef> chain;
  chain.reserve(length);
  for (int i = 0; i < length; ++i) chain.push_back(Fence::Create("link"));
  uintptr_t lowest = UINTPTR_MAX;
  uintptr_t highest = 0;
  int runs = 0;
  for (int i = 0; i + 1 < length; ++i) {
    FenceRef next = chain[i + 1];
    ASSERT_TRUE(
        chain[i]
            ->AddCallback([next, &lowest, &highest, &runs](const Fence&) {
              uintptr_t frame =
                  reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
              lowest = std::min(lowest, frame);
              highest = std::max(highest, frame);
              ++runs;
              EXPECT_TRUE(next->Signal().ok());
            })
            .ok());
  }
  ASSERT_TRUE(chain.front()->Signal().ok());
  EXPECT_TRUE(chain.back()->IsSignaled());
  EXPECT_EQ(runs, length - 1);
  EXPECT_LT(highest - lowest, 16 * 1024u);
}

TEST(FenceTest, LongSignalChainRunsWithBoundedStack) { RunSignalChain(100000); }

TEST(FenceTest, LongSignalChainRunsOnSmallStack) {
  RunWithStack(256 * 1024, [] { RunSignalChain(100000); });
}

TEST(FenceTest, WaitForTimesOutWhileUnsignalled) {
  FenceRef f = Fence::Create("f");
  EXPECT_FALSE(f->WaitFor(absl::Milliseconds(1)));
  EXPECT_FALSE(f->WaitUntil(absl::InfinitePast()));
  ASSERT_TRUE(f->Signal().ok());
  EXPECT_TRUE(f->WaitFor(absl::ZeroDuration()));
}

TEST(FenceTest, WaitReturnsWhenSignalledByAnotherThread) {
  FenceRef f = Fence::Create("f");
  int payload = 0;  // plain, published by the signal
  std::thread signaller([&] {
    payload = 7;
    ASSERT_TRUE(f->SignalWithError(absl::DataLossError("x")).ok());
  });
  f->Wait();
  EXPECT_EQ(payload, 7);
  EXPECT_EQ(f->error().code(), StatusCode::kDataLoss);
  signaller.join();
}

TEST(FenceTest, AllWaitersWakeOnSignal) {
  FenceRef f = Fence::Create("f");
  std::atomic<int> woken{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 8; ++i) {
    waiters.emplace_back([&] {
      EXPECT_TRUE(f->WaitUntil(absl::InfiniteFuture()));
      woken.fetch_add(1);
    });
  }
  ASSERT_TRUE(f->Signal().ok());
  for (std::thread& t : waiters) t.join();
  EXPECT_EQ(woken.load(), 8);
}

TEST(FenceTest, ObservingSignalledPublishesEarlierPlainWrites) {
  // The unknown-state pattern: a plain flag written before the signal must
  // be visible to whoever sees IsSignaled() == true. TSan checks the edge.
  for (int round = 0; round < 200; ++round) {
    FenceRef f = Fence::Create("publish");
    int unknown_state = 0;
    std::thread writer([&] {
      unknown_state = round + 1;
      ASSERT_TRUE(f->Signal().ok());
    });
    while (!f->IsSignaled()) std::this_thread::yield();
    EXPECT_EQ(unknown_state, round + 1);
    writer.join();
  }
}

TEST(FenceTest, ConcurrentSignalsExactlyOneWins) {
  for (int round = 0; round < 50; ++round) {
    FenceRef f = Fence::Create("contended");
    std::atomic<int> runs{0};
    ASSERT_TRUE(f->AddCallback([&runs](const Fence&) { runs++; }).ok());
    std::atomic<int> winners{0};
    std::atomic<int> winner_index{-1};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        absl::Status s =
            f->SignalWithError(absl::InternalError(std::to_string(t)));
        if (s.ok()) {
          winners++;
          winner_index = t;
        } else {
          EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
        }
      });
    }
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(winners.load(), 1);
    EXPECT_EQ(runs.load(), 1);
    EXPECT_EQ(f->error(),
              absl::InternalError(std::to_string(winner_index.load())));
  }
}

TEST(FenceTest, CallbackAddedConcurrentlyRunsExactlyOnceOrIsRefused) {
  constexpr int kAdders = 4;
  constexpr int kPerAdder = 500;
  FenceRef f = Fence::Create("f");
  std::vector<std::atomic<int>> runs(kAdders * kPerAdder);
  std::vector<std::atomic<bool>> accepted(kAdders * kPerAdder);
  std::vector<std::thread> threads;
  for (int t = 0; t < kAdders; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerAdder; ++i) {
        int slot = t * kPerAdder + i;
        absl::Status s =
            f->AddCallback([&runs, slot](const Fence&) { runs[slot]++; });
        if (s.ok()) {
          accepted[slot] = true;
        } else {
          EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
        }
      }
    });
  }
  ASSERT_TRUE(f->Signal().ok());
  for (std::thread& t : threads) t.join();
  for (int slot = 0; slot < kAdders * kPerAdder; ++slot) {
    EXPECT_EQ(runs[slot].load(), accepted[slot].load() ? 1 : 0) << slot;
  }
}

TEST(FenceTest, FirstErrorSkipsUnsignalledAndNull) {
  FenceRef pending = Fence::Create("pending");
  ASSERT_TRUE(pending->SetError(absl::AbortedError("not yet")).ok());
  std::vector<FenceRef> fences = {
      nullptr,
      Fence::CreateSignaled("ok"),
      pending,
      Fence::CreateSignaled("first", absl::DataLossError("first")),
      Fence::CreateSignaled("second", absl::InternalError("second")),
  };
  EXPECT_EQ(FirstError(fences), absl::DataLossError("first"));
  EXPECT_TRUE(FirstError({}).ok());
  EXPECT_TRUE(FirstError({Fence::CreateSignaled("ok"), pending}).ok());
  ASSERT_TRUE(pending->Signal().ok());
}

}  // namespace
}  // namespace gpumig
