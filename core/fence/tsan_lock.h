// TsanMutexLock: absl::Mutex locking that ThreadSanitizer can see.
//
// Debian's libabsl is built without -fsanitize=thread, so TSan sees none of
// the happens-before edges absl::Mutex creates and reports every access
// guarded by one as a race. These helpers add the edges with TSan's
// acquire/release annotations on the mutex's address: every critical section
// acquires at entry and releases at exit, and a wait releases before blocking
// and acquires after waking. Without TSan they compile to plain absl calls.
//
// Rules for code that uses them: lock only through TsanMutexLock /
// TsanAwaitWithDeadline / TsanCondVarWait, and give Await() conditions only
// atomic reads (absl evaluates them on other threads, inside Unlock()).
//
// Internal to core/fence; a candidate for core/base if other packages need it.
#ifndef GPUMIG_CORE_FENCE_TSAN_LOCK_H_
#define GPUMIG_CORE_FENCE_TSAN_LOCK_H_

#include "absl/base/config.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#if defined(ABSL_HAVE_THREAD_SANITIZER)
#include <sanitizer/tsan_interface.h>
#endif

namespace gpumig {
namespace fence_internal {

inline void TsanAcquire(absl::Mutex* mu) {
#if defined(ABSL_HAVE_THREAD_SANITIZER)
  __tsan_acquire(mu);
#else
  (void)mu;
#endif
}

inline void TsanRelease(absl::Mutex* mu) {
#if defined(ABSL_HAVE_THREAD_SANITIZER)
  __tsan_release(mu);
#else
  (void)mu;
#endif
}

// absl::MutexLock plus the TSan edges.
class ABSL_SCOPED_LOCKABLE TsanMutexLock {
 public:
  explicit TsanMutexLock(absl::Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
      : mu_(mu) {
    mu_->Lock();
    TsanAcquire(mu_);
  }
  TsanMutexLock(const TsanMutexLock&) = delete;
  TsanMutexLock& operator=(const TsanMutexLock&) = delete;
  ~TsanMutexLock() ABSL_UNLOCK_FUNCTION() {
    TsanRelease(mu_);
    mu_->Unlock();
  }

 private:
  absl::Mutex* const mu_;
};

// mu->AwaitWithDeadline(cond, deadline) with the edges. `cond` must read
// only atomics.
inline bool TsanAwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                                  absl::Time deadline)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  TsanRelease(mu);
  bool result = mu->AwaitWithDeadline(cond, deadline);
  TsanAcquire(mu);
  return result;
}

// cv->Wait(mu) with the edges.
inline void TsanCondVarWait(absl::CondVar* cv, absl::Mutex* mu)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  TsanRelease(mu);
  cv->Wait(mu);
  TsanAcquire(mu);
}

}  // namespace fence_internal
}  // namespace gpumig

#endif  // GPUMIG_CORE_FENCE_TSAN_LOCK_H_
