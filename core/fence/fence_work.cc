// FenceWork: see fence_work.h for the contract.
//
// The shared State counts what the work still waits for in `pending`: one for
// the commit itself plus one per unsignalled dependency (and the timeline's
// previous fence). Whoever brings the count to zero -- a dependency callback
// or Commit() -- completes the work, exactly once; the acq_rel decrement
// publishes every error recorded before it. The builder's fields (`awaited`,
// `timeline_previous`) are touched only by the builder thread; `work` belongs
// to the builder until the count reaches zero and to the completer after.
//
// Ownership: each dependency callback holds the State, the State holds the
// work's fence; nothing holds the dependencies, so no cycle forms.
#include "core/fence/fence_work.h"

#include <atomic>
#include <cstdint>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "core/base/mutex.h"

namespace gpumig {

struct FenceWork::State {
  State(FenceRef fence, WorkFn work, WorkQueue* queue)
      : fence(std::move(fence)),
        coalescing(!work),
        queue(queue),
        work(std::move(work)) {}

  // Constant after construction.
  const FenceRef fence;
  const bool coalescing;
  WorkQueue* const queue;

  // Builder's until `pending` reaches zero, then the completer's.
  WorkFn work;
  bool inline_when_no_error = false;

  // The commit's own count plus one per unsignalled awaited fence.
  std::atomic<int64_t> pending{1};

  absl::Mutex mu;
  // First dependency error: the first error observed wins, later ones are
  // dropped.
  absl::Status first_error ABSL_GUARDED_BY(mu);

  // Builder thread only.
  // Ids of awaited dependencies: a handful inline, a hash set beyond that.
  absl::InlinedVector<uint64_t, 4> awaited;
  absl::flat_hash_set<uint64_t> awaited_set;
  FenceRef timeline_previous;  // until commit, for cancellation

  // Builder thread only. False (and nothing recorded) if already awaited.
  bool NoteAwaited(uint64_t id) {
    constexpr size_t kMaxLinear = 16;
    if (awaited_set.empty()) {
      if (absl::c_linear_search(awaited, id)) return false;
      if (awaited.size() < kMaxLinear) {
        awaited.push_back(id);
        return true;
      }
      awaited_set.insert(awaited.begin(), awaited.end());
    }
    return awaited_set.insert(id).second;
  }

  void RecordError(absl::Status error) ABSL_LOCKS_EXCLUDED(mu) {
    if (error.ok()) return;
    MutexLock lock(&mu);
    if (first_error.ok()) first_error = std::move(error);
  }

  absl::Status TakeFirstError() ABSL_LOCKS_EXCLUDED(mu) {
    MutexLock lock(&mu);
    return first_error;
  }

  // Runs the work with the dependency error and signals with its result. The
  // work's captures are released before the signal, so whoever observes the
  // fence signalled also observes what the work held (e.g. blocks) released.
  static void RunWork(State& state, absl::Status dependency_error) {
    FenceWork::WorkFn work = std::move(state.work);
    absl::Status result = std::move(work)(std::move(dependency_error));
    work = nullptr;
    // Fails only if someone signalled our fence by hand; it keeps that signal.
    state.fence->SignalWithError(std::move(result)).IgnoreError();
  }

  // Called exactly once, by whoever brought `pending` to zero.
  static void Complete(const std::shared_ptr<State>& state, bool run_inline) {
    absl::Status error = state->TakeFirstError();
    if (state->coalescing) {
      // Coalescing-only: signal from the completing callback; Fence's worklist
      // keeps chains iterative.
      state->fence->SignalWithError(std::move(error)).IgnoreError();
      return;
    }
    if (run_inline || (state->inline_when_no_error && error.ok())) {
      RunWork(*state, std::move(error));
      return;
    }
    absl::Status submitted =
        state->queue->Submit([state, error]() { RunWork(*state, error); });
    if (!submitted.ok()) {
      // The queue is shutting down: run here rather than strand the fence.
      RunWork(*state, std::move(error));
    }
  }

  static void DropPending(const std::shared_ptr<State>& state,
                          bool run_inline) {
    if (state->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      Complete(state, run_inline);
    }
  }

  // Makes `state` wait for `dependency`; folds its error in if `fold_error`.
  static void AwaitFence(const std::shared_ptr<State>& state,
                         const FenceRef& dependency, bool fold_error) {
    if (dependency->IsSignaled()) {
      if (fold_error) state->RecordError(dependency->error());
      return;
    }
    state->pending.fetch_add(1, std::memory_order_relaxed);
    // Each callback captures only the State, which fits AnyInvocable's
    // inline storage (no allocation per dependency).
    Fence::Callback callback;
    if (fold_error) {
      callback = [state](const Fence& signaled) {
        state->RecordError(signaled.error());
        DropPending(state, /*run_inline=*/false);
      };
    } else {
      callback = [state](const Fence&) {
        DropPending(state, /*run_inline=*/false);
      };
    }
    absl::Status added = dependency->AddCallback(std::move(callback));
    if (!added.ok()) {
      // Signalled since the check. The commit's count is still held, so this
      // cannot reach zero.
      state->pending.fetch_sub(1, std::memory_order_relaxed);
      if (fold_error) state->RecordError(dependency->error());
    }
  }
};

absl::StatusOr<std::unique_ptr<FenceWork>> FenceWork::Create(
    absl::string_view name, WorkFn work, WorkQueue* queue, Timeline* timeline) {
  if (work && queue == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fence work '", name, "' has a work function but no queue"));
  }
  FenceRef fence;
  FenceRef previous;
  if (timeline != nullptr) {
    Timeline::Link link = timeline->Append(name);
    fence = std::move(link.fence);
    previous = std::move(link.previous);
  } else {
    fence = Fence::Create(name);
  }
  auto state = std::make_shared<State>(fence, std::move(work), queue);
  if (previous != nullptr) {
    // Timeline: order after the previous fence; its error is not inherited.
    State::AwaitFence(state, previous, /*fold_error=*/false);
    if (!previous->IsSignaled()) state->timeline_previous = std::move(previous);
  }
  return std::unique_ptr<FenceWork>(
      new FenceWork(std::move(fence), std::move(state)));
}

std::unique_ptr<FenceWork> FenceWork::CreateCoalescing(absl::string_view name,
                                                       Timeline* timeline) {
  // Cannot fail: only a work function without a queue is refused.
  return *Create(name, WorkFn(), nullptr, timeline);
}

FenceWork::FenceWork(FenceRef fence, std::shared_ptr<State> state)
    : fence_(std::move(fence)), state_(std::move(state)) {}

FenceWork::~FenceWork() {
  if (committed_) return;
  // Never committed: the commit's count is never dropped, so the work can
  // never run. Release its captures now and cancel the fence -- after the
  // timeline's previous fence, to keep the timeline's signal order.
  state_->work = nullptr;
  state_->awaited = {};
  state_->awaited_set = {};
  absl::Status cancelled = absl::CancelledError(absl::StrCat(
      "fence work '", fence_->name(), "' destroyed before commit"));
  FenceRef previous = std::move(state_->timeline_previous);
  if (previous != nullptr) {
    absl::Status added =
        previous->AddCallback([fence = fence_, cancelled](const Fence&) {
          fence->SignalWithError(cancelled).IgnoreError();
        });
    if (added.ok()) return;
  }
  fence_->SignalWithError(std::move(cancelled)).IgnoreError();
}

bool FenceWork::coalescing_only() const { return state_->coalescing; }

absl::Status FenceWork::Await(FenceRef dependency) {
  if (dependency == nullptr) {
    return absl::InvalidArgumentError("null dependency");
  }
  if (committed_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "fence work '", fence_->name(), "': dependency added after commit"));
  }
  if (dependency == fence_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fence work '", fence_->name(), "' cannot await its own fence"));
  }
  if (!state_->NoteAwaited(dependency->id())) {
    return absl::AlreadyExistsError(
        absl::StrCat("fence work '", fence_->name(), "' already awaits fence ",
                     dependency->id(), " '", dependency->name(), "'"));
  }
  State::AwaitFence(state_, dependency, /*fold_error=*/true);
  return absl::OkStatus();
}

absl::Status FenceWork::RunInlineWhenNoError() {
  if (committed_) {
    return absl::FailedPreconditionError(
        absl::StrCat("fence work '", fence_->name(), "' is already committed"));
  }
  state_->inline_when_no_error = true;
  return absl::OkStatus();
}

absl::Status FenceWork::Commit() { return CommitInternal(false); }

absl::Status FenceWork::CommitImmediate() { return CommitInternal(true); }

absl::Status FenceWork::CommitInternal(bool immediate) {
  if (committed_) {
    return absl::FailedPreconditionError(
        absl::StrCat("fence work '", fence_->name(), "' is already committed"));
  }
  committed_ = true;
  state_->awaited = {};
  state_->awaited_set = {};
  state_->timeline_previous = nullptr;
  // If nothing is pending this completes now; with `immediate` the work runs
  // in this thread (dma_fence_work_commit_imm), else on the queue.
  State::DropPending(state_, immediate);
  return absl::OkStatus();
}

}  // namespace gpumig
