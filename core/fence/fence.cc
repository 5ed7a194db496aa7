// Fence: see fence.h for the contract.
//
// Callback dispatch. Signal() moves the fence's callbacks out under mu_ and
// runs them after releasing it. Each thread has a dispatcher: the outermost
// Signal() on a thread becomes the dispatcher and runs its own batch, then
// drains every batch that callbacks queued by signalling further fences. A
// nested Signal() only appends its batch (holding a reference to its fence)
// and returns. Chains of any length therefore run iteratively with bounded
// stack depth, and no callback ever runs under a fence lock.
//
// The destructor path (a fence released unsignalled) has no reference left to
// hold in a batch, so it runs its callbacks synchronously on the dying fence
// (whose members are still intact); signals they make are queued as usual.
#include "core/fence/fence.h"

#include <deque>
#include <utility>

#include "core/base/mutex.h"

namespace gpumig {
namespace {

std::atomic<uint64_t> next_fence_id{1};

struct Batch {
  FenceRef fence;
  std::vector<Fence::Callback> callbacks;
};

// Per-thread worklist of callback batches. `active` while this thread is
// running callbacks (it is then the outermost dispatcher).
struct Dispatcher {
  bool active = false;
  std::deque<Batch> pending;
};

Dispatcher& ThisThreadDispatcher() {
  static thread_local Dispatcher dispatcher;
  return dispatcher;
}

// Runs `callbacks` in order on `fence`, destroying each right after it ran.
void RunCallbacks(const Fence& fence, std::vector<Fence::Callback>& callbacks) {
  for (Fence::Callback& slot : callbacks) {
    Fence::Callback cb = std::move(slot);
    std::move(cb)(fence);
  }
}

// Drains the worklist; `d.active` must be set by the caller.
void Drain(Dispatcher& d) {
  while (!d.pending.empty()) {
    Batch batch = std::move(d.pending.front());
    d.pending.pop_front();
    RunCallbacks(*batch.fence, batch.callbacks);
  }
}

// Runs `callbacks` on `fence` now. If this thread was not dispatching yet, it
// becomes the dispatcher and also drains whatever the callbacks queued.
void DispatchNow(const Fence& fence, std::vector<Fence::Callback>& callbacks) {
  Dispatcher& d = ThisThreadDispatcher();
  if (d.active) {
    RunCallbacks(fence, callbacks);
    return;
  }
  d.active = true;
  RunCallbacks(fence, callbacks);
  Drain(d);
  d.active = false;
}

// Runs `callbacks` on `fence`, or queues them if this thread is already
// dispatching (the outermost dispatcher will run them).
void Dispatch(FenceRef fence, std::vector<Fence::Callback> callbacks) {
  Dispatcher& d = ThisThreadDispatcher();
  if (d.active) {
    d.pending.push_back(Batch{std::move(fence), std::move(callbacks)});
    return;
  }
  d.active = true;
  RunCallbacks(*fence, callbacks);
  callbacks.clear();
  fence.reset();
  Drain(d);
  d.active = false;
}

absl::Status AlreadySignaled() {
  return absl::FailedPreconditionError("already signalled");
}

}  // namespace

Fence::Fence(absl::string_view name, uint64_t context, uint64_t seqno)
    : id_(next_fence_id.fetch_add(1, std::memory_order_relaxed)),
      context_(context),
      seqno_(seqno),
      name_(name),
      create_time_(absl::Now()) {}

FenceRef Fence::Create(absl::string_view name, uint64_t context,
                       uint64_t seqno) {
  // One allocation for the fence and its control block; a local class of a
  // member function may call the private constructor.
  struct Enabler : Fence {
    Enabler(absl::string_view name, uint64_t context, uint64_t seqno)
        : Fence(name, context, seqno) {}
  };
  FenceRef fence = std::make_shared<Enabler>(name, context, seqno);
  fence->self_ = fence;
  return fence;
}

FenceRef Fence::CreateSignaled(absl::string_view name, absl::Status error) {
  FenceRef fence = Create(name);
  // A fresh fence has no callbacks and cannot be signalled yet.
  fence->SignalWithError(std::move(error)).IgnoreError();
  return fence;
}

Fence::~Fence() {
  std::vector<Callback> callbacks;
  {
    MutexLock lock(&mu_);
    if (signaled_.load(std::memory_order_relaxed)) return;
    if (error_.ok()) {
      error_ = absl::AbortedError("fence released unsignalled");
    }
    signal_time_ = absl::Now();
    callbacks.swap(callbacks_);
    signaled_.store(true, std::memory_order_release);
  }
  // No reference to this fence exists any more: run the stranded callbacks
  // now, while the members are intact.
  if (!callbacks.empty()) DispatchNow(*this, callbacks);
}

absl::Status Fence::error() const {
  MutexLock lock(&mu_);
  return signaled_.load(std::memory_order_relaxed) ? error_ : absl::OkStatus();
}

absl::Time Fence::signal_time() const {
  MutexLock lock(&mu_);
  return signal_time_;
}

absl::Status Fence::SetError(absl::Status error) {
  if (error.ok()) {
    return absl::InvalidArgumentError("SetError needs a non-OK status");
  }
  MutexLock lock(&mu_);
  if (signaled_.load(std::memory_order_relaxed)) return AlreadySignaled();
  if (error_.ok()) error_ = std::move(error);
  return absl::OkStatus();
}

absl::Status Fence::Signal() { return SignalWithError(absl::OkStatus()); }

absl::Status Fence::SignalWithError(absl::Status error) {
  std::vector<Callback> callbacks;
  {
    MutexLock lock(&mu_);
    if (signaled_.load(std::memory_order_relaxed)) return AlreadySignaled();
    if (!error.ok() && error_.ok()) error_ = std::move(error);
    signal_time_ = absl::Now();
    callbacks.swap(callbacks_);
    // Release: everything written before the signal is visible to a thread
    // that reads signaled_ with acquire (IsSignaled) or takes mu_ (Wait).
    signaled_.store(true, std::memory_order_release);
    cv_.SignalAll();
  }
  if (callbacks.empty()) return absl::OkStatus();
  // Hold a reference for the callbacks: one of them may drop the last
  // external reference, and a queued batch outlives this call.
  FenceRef self = self_.lock();
  if (self == nullptr) {
    // Not reachable through the public API (a Fence lives only in a
    // shared_ptr and is never signalled from its destructor); run in place.
    DispatchNow(*this, callbacks);
  } else {
    Dispatch(std::move(self), std::move(callbacks));
  }
  return absl::OkStatus();
}

absl::Status Fence::AddCallback(Callback cb) {
  if (!cb) return absl::InvalidArgumentError("empty fence callback");
  MutexLock lock(&mu_);
  if (signaled_.load(std::memory_order_relaxed)) return AlreadySignaled();
  callbacks_.push_back(std::move(cb));
  return absl::OkStatus();
}

bool Fence::WaitUntil(absl::Time deadline) const {
  if (IsSignaled()) return true;
  MutexLock lock(&mu_);
  // A CondVar, not an absl::Condition: the waiter evaluates its own
  // predicate, so no other thread touches this frame (which TSan, blind to
  // Debian's absl internals, would report when the frame is reused).
  while (!signaled_.load(std::memory_order_relaxed)) {
    TsanRelease(&mu_);
    const bool timed_out = cv_.WaitWithDeadline(&mu_, deadline);
    TsanAcquire(&mu_);
    if (timed_out) break;
  }
  return signaled_.load(std::memory_order_relaxed);
}

absl::Status FirstError(const std::vector<FenceRef>& fences) {
  for (const FenceRef& fence : fences) {
    if (fence == nullptr || !fence->IsSignaled()) continue;
    absl::Status error = fence->error();
    if (!error.ok()) return error;
  }
  return absl::OkStatus();
}

}  // namespace gpumig
