// Fence: a one-shot completion signal with an error, after Linux's dma_fence.
//
// A Fence belongs to a context (a timeline; 0 = unordered) and carries a
// seqno. It goes from unsignalled to signalled exactly once. An error may be
// set before the signal and never changes after it; "signalled with error"
// is how every asynchronous failure in gpumig is reported.
//
// clang-format off
//   state       | Signal()/SignalWithError() | SetError()          | AddCallback()
//   ------------+----------------------------+---------------------+--------------------
//   unsignalled | -> signalled, runs cbs     | records (1st wins)  | queued, runs at signal
//   signalled   | FAILED_PRECONDITION, no-op | FAILED_PRECONDITION | FAILED_PRECONDITION
// clang-format on
//
// Callbacks run in the order added, on the signalling thread, after the
// fence's lock is released. They must not block or wait on another fence.
// Nested signals (a callback that signals another fence) are queued on a
// per-thread worklist and run by the outermost Signal(), so a chain of any
// length completes with bounded stack depth and never under a fence lock.
//
// Memory ordering: the signalled state is published with release semantics
// and read with acquire semantics, so everything written before Signal() is
// visible to a thread that observes IsSignaled() == true (or returns from a
// successful Wait()). The failsafe relies on this for the unknown-state flag.
//
// A Fence dropped unsignalled (last reference released) is force-signalled
// with ABORTED "fence released unsignalled" so no callback is stranded.
//
// Thread-safe. Shared by reference count (std::shared_ptr).
#ifndef GPUMIG_CORE_FENCE_FENCE_H_
#define GPUMIG_CORE_FENCE_FENCE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace gpumig {

class Fence;
using FenceRef = std::shared_ptr<Fence>;

class Fence {
 public:
  // Invoked once with the signalled fence (its error is final).
  using Callback = absl::AnyInvocable<void(const Fence&) &&>;

  // A new unsignalled fence. `context` 0 means "not on a timeline".
  static FenceRef Create(absl::string_view name, uint64_t context = 0,
                         uint64_t seqno = 0);
  // A fence that is already signalled with `error` (OK for success).
  static FenceRef CreateSignaled(absl::string_view name,
                                 absl::Status error = absl::OkStatus());

  Fence(const Fence&) = delete;
  Fence& operator=(const Fence&) = delete;
  ~Fence();

  // Process-unique, never reused, never 0. Safe to hand to clients.
  uint64_t id() const { return id_; }
  uint64_t context() const { return context_; }
  uint64_t seqno() const { return seqno_; }
  const std::string& name() const { return name_; }

  // Acquire load of the signalled state.
  bool IsSignaled() const { return signaled_.load(std::memory_order_acquire); }

  // The error the fence signalled with. OK while unsignalled or on success.
  absl::Status error() const ABSL_LOCKS_EXCLUDED(mu_);

  // Records `error` to be reported at the signal. The first error set wins.
  // INVALID_ARGUMENT if `error` is OK; FAILED_PRECONDITION if signalled.
  absl::Status SetError(absl::Status error) ABSL_LOCKS_EXCLUDED(mu_);

  // Signals the fence (with any error set before) and runs its callbacks.
  // FAILED_PRECONDITION "already signalled" on a second call; nothing changes.
  absl::Status Signal() ABSL_LOCKS_EXCLUDED(mu_);
  // SetError(error) if !error.ok(), then Signal(), atomically.
  absl::Status SignalWithError(absl::Status error) ABSL_LOCKS_EXCLUDED(mu_);

  // Queues `cb` to run at the signal. FAILED_PRECONDITION "already signalled"
  // if the fence has signalled: `cb` is dropped unrun and the caller acts
  // itself (dma_fence_add_callback's -ENOENT). INVALID_ARGUMENT if `cb` is
  // empty.
  absl::Status AddCallback(Callback cb) ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks until signalled or `deadline`; returns IsSignaled(). The fence's
  // error is read separately with error(). Must not be called from a fence
  // callback.
  bool WaitUntil(absl::Time deadline) const ABSL_LOCKS_EXCLUDED(mu_);
  bool WaitFor(absl::Duration timeout) const {
    return WaitUntil(absl::Now() + timeout);
  }
  void Wait() const { WaitUntil(absl::InfiniteFuture()); }

  absl::Time create_time() const { return create_time_; }
  // InfinitePast() while unsignalled.
  absl::Time signal_time() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  Fence(absl::string_view name, uint64_t context, uint64_t seqno);

  // Set once by Create() before the fence is shared; lets Signal() keep the
  // fence alive while its callbacks are queued on a thread's worklist.
  std::weak_ptr<Fence> self_;

  // Constant after construction.
  const uint64_t id_;
  const uint64_t context_;
  const uint64_t seqno_;
  const std::string name_;
  const absl::Time create_time_;

  std::atomic<bool> signaled_{false};
  mutable absl::Mutex mu_;
  mutable absl::CondVar cv_;  // Signalled at the signal; waiters in WaitUntil.
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  absl::Time signal_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::vector<Callback> callbacks_ ABSL_GUARDED_BY(mu_);
};

// Convenience: the first error among already-signalled `fences` (OK if none).
absl::Status FirstError(const std::vector<FenceRef>& fences);

}  // namespace gpumig

#endif  // GPUMIG_CORE_FENCE_FENCE_H_
