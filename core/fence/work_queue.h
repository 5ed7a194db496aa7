// WorkQueue: a bounded pool of worker threads that runs queued closures in
// FIFO order (the analog of the kernel's system_unbound_wq for fence works).
//
// Thread-safe. Shutdown() stops accepting work, runs everything already
// queued, and joins the threads; the destructor calls it.
#ifndef GPUMIG_CORE_FENCE_WORK_QUEUE_H_
#define GPUMIG_CORE_FENCE_WORK_QUEUE_H_

#include <cstddef>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace gpumig {

class WorkQueue {
 public:
  using Task = absl::AnyInvocable<void() &&>;

  // `num_threads` >= 1 (values below are raised to 1).
  WorkQueue(absl::string_view name, int num_threads);
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;
  ~WorkQueue();

  // Queues `task`. UNAVAILABLE once Shutdown() has begun (the task is
  // dropped unrun); INVALID_ARGUMENT if `task` is empty.
  absl::Status Submit(Task task) ABSL_LOCKS_EXCLUDED(mu_);

  // Stops accepting, drains queued tasks, joins the workers. Idempotent.
  // Must not be called from a task of this queue.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // Tasks queued and not yet started.
  size_t pending() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void WorkerLoop();

  const std::string name_;

  // Serialises Shutdown() callers so the workers are joined exactly once.
  absl::Mutex join_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(join_mu_);

  mutable absl::Mutex mu_;
  std::deque<Task> tasks_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  // Signalled when a task is queued or shutdown begins.
  absl::CondVar work_cv_;
};

}  // namespace gpumig

#endif  // GPUMIG_CORE_FENCE_WORK_QUEUE_H_
