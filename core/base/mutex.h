// Locking helpers that ThreadSanitizer can see.
//
// Debian's libabsl is built without -fsanitize=thread, so TSan sees none of
// the happens-before edges absl::Mutex creates and reports every access it
// guards as a race. Code that TSan runs (core, and the tests built with
// --config=tsan, which leave out gRPC) locks an absl::Mutex through these
// helpers; the gRPC-linked daemon and client may use absl::MutexLock
// directly, since they never run under TSan. The helpers add the edges with
// TSan's acquire/release annotations
// on the mutex's address: a critical section acquires at entry and releases
// at exit; a wait releases before blocking and acquires after waking.
// Without TSan they compile to the plain absl calls.
//
// Rule: absl::Condition predicates passed to AwaitWithDeadline() read only
// atomics or data absl itself orders (absl evaluates them on other threads,
// inside Unlock()).
#ifndef GPUMIG_CORE_BASE_MUTEX_H_
#define GPUMIG_CORE_BASE_MUTEX_H_

#include "absl/base/config.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#if defined(ABSL_HAVE_THREAD_SANITIZER)
#include <sanitizer/tsan_interface.h>
#endif

namespace gpumig {

inline void TsanAcquire(const void* addr) {
#if defined(ABSL_HAVE_THREAD_SANITIZER)
  __tsan_acquire(const_cast<void*>(addr));
#else
  (void)addr;
#endif
}

inline void TsanRelease(const void* addr) {
#if defined(ABSL_HAVE_THREAD_SANITIZER)
  __tsan_release(const_cast<void*>(addr));
#else
  (void)addr;
#endif
}

inline void LockMutex(absl::Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) {
  mu->Lock();
  TsanAcquire(mu);
}

inline bool TryLockMutex(absl::Mutex* mu)
    ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true, mu) {
  if (!mu->TryLock()) return false;
  TsanAcquire(mu);
  return true;
}

inline void UnlockMutex(absl::Mutex* mu) ABSL_UNLOCK_FUNCTION(mu) {
  TsanRelease(mu);
  mu->Unlock();
}

// absl::MutexLock with the TSan edges.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(absl::Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
      : mu_(mu) {
    LockMutex(mu_);
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { UnlockMutex(mu_); }

 private:
  absl::Mutex* const mu_;
};

// mu->AwaitWithDeadline(cond, deadline) with the edges.
inline bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                              absl::Time deadline)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  TsanRelease(mu);
  const bool result = mu->AwaitWithDeadline(cond, deadline);
  TsanAcquire(mu);
  return result;
}

// cv->Wait(mu) with the edges.
inline void CondVarWait(absl::CondVar* cv, absl::Mutex* mu)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  TsanRelease(mu);
  cv->Wait(mu);
  TsanAcquire(mu);
}

}  // namespace gpumig

#endif  // GPUMIG_CORE_BASE_MUTEX_H_
