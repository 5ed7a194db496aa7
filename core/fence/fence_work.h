// FenceWork: await fences, then run work, then signal (after dma_fence_work,
// with three rules of its own: the work always runs and sees the first
// dependency error; a work-less FenceWork only coalesces; timeline mode).
//
// A FenceWork owns a Fence (fence()). Dependencies are added with Await();
// Commit() seals the set. When every dependency has signalled:
//
//  * The first dependency error wins (also for dependencies that had already
//    signalled at Await() time).
//  * The work ALWAYS runs and receives that error (OK if none). Its returned
//    status becomes the fence's error: a work either propagates the error
//    (returns it, skipping its job) or consumes it (the failsafe memcpy does
//    the copy by CPU and returns OK). Nothing is copied automatically.
//  * Work runs on the WorkQueue, or inline in the committer's thread when
//    CommitImmediate() finds nothing pending.
//  * Coalescing-only (no work function): the fence signals with the
//    first dependency error directly from the callback that completed the
//    last dependency -- no thread hop. Fence's per-thread worklist keeps
//    chains of such fences iterative (bounded stack, never under a lock).
//  * Timeline: Create(..., timeline) gives the fence the timeline's
//    context and next seqno and awaits the timeline's previous fence for
//    ordering only -- its error is NOT inherited. Fences of one timeline
//    therefore signal in seqno order whatever order their dependencies finish.
//
// clang-format off
//   lifecycle: building --Commit()--> committed --deps done--> running --> signalled
// clang-format on
//
// If the queue refuses the work (shut down), it runs inline on the thread
// that completed the last dependency rather than strand the fence. A
// FenceWork destroyed before Commit() signals its fence with CANCELLED and
// never runs the work.
//
// Thread-safety: Await()/Commit() must be called by one thread (the builder);
// the rest is internally synchronised. The object may be destroyed right
// after Commit(): the pending work keeps its own state alive.
#ifndef GPUMIG_CORE_FENCE_FENCE_WORK_H_
#define GPUMIG_CORE_FENCE_FENCE_WORK_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/fence/fence.h"
#include "core/fence/timeline.h"
#include "core/fence/work_queue.h"

namespace gpumig {

class FenceWork {
 public:
  // Receives the first dependency error (OK if none); returns the fence's
  // error (OK to signal cleanly).
  using WorkFn =
      absl::AnyInvocable<absl::Status(absl::Status dependency_error) &&>;

  // `work` empty means coalescing-only. INVALID_ARGUMENT if `work` is set and
  // `queue` is null. `timeline` may be null; it must outlive the fence's
  // signal.
  static absl::StatusOr<std::unique_ptr<FenceWork>> Create(
      absl::string_view name, WorkFn work, WorkQueue* queue,
      Timeline* timeline = nullptr);
  // Coalescing-only shorthand.
  static std::unique_ptr<FenceWork> CreateCoalescing(
      absl::string_view name, Timeline* timeline = nullptr);

  FenceWork(const FenceWork&) = delete;
  FenceWork& operator=(const FenceWork&) = delete;
  ~FenceWork();

  const FenceRef& fence() const { return fence_; }
  bool coalescing_only() const;

  // Adds a dependency. INVALID_ARGUMENT for null; ALREADY_EXISTS if the same
  // fence is already awaited (nothing changes); FAILED_PRECONDITION after
  // commit.
  absl::Status Await(FenceRef dependency);

  // The work is cheap and never blocks when every dependency succeeded (the
  // failsafe's common case, which only records "blit ok"): then run it in
  // the callback that completed the last dependency, with no thread hop --
  // upstream's irq_work path -- and use the queue only when there is an
  // error to handle. FAILED_PRECONDITION after commit.
  absl::Status RunInlineWhenNoError();

  // Seals the dependency set; the work runs once all have signalled.
  // FAILED_PRECONDITION on a second commit.
  absl::Status Commit();
  // Like Commit(), but when nothing is pending the work runs inline in this
  // thread before returning (dma_fence_work_commit_imm).
  absl::Status CommitImmediate();

 private:
  struct State;
  FenceWork(FenceRef fence, std::shared_ptr<State> state);
  absl::Status CommitInternal(bool immediate);

  FenceRef fence_;
  std::shared_ptr<State> state_;
  bool committed_ = false;
};

}  // namespace gpumig

#endif  // GPUMIG_CORE_FENCE_FENCE_WORK_H_
