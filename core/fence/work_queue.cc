// WorkQueue: see work_queue.h for the contract.
#include "core/fence/work_queue.h"

#include <utility>

#include "core/base/mutex.h"

#if defined(__linux__)
#include <pthread.h>
#endif

namespace gpumig {

WorkQueue::WorkQueue(absl::string_view name, int num_threads) : name_(name) {
  if (num_threads < 1) num_threads = 1;
  MutexLock lock(&join_mu_);
  workers_.reserve(num_threads);
  for (int i = 0; i < num_threads; ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
#if defined(__linux__)
    // Thread names are at most 15 characters; best effort.
    pthread_setname_np(workers_.back().native_handle(),
                       name_.substr(0, 15).c_str());
#endif
  }
}

WorkQueue::~WorkQueue() { Shutdown(); }

absl::Status WorkQueue::Submit(Task task) {
  if (!task) return absl::InvalidArgumentError("empty task");
  MutexLock lock(&mu_);
  if (shutting_down_) {
    return absl::UnavailableError("work queue '" + name_ + "' is shut down");
  }
  tasks_.push_back(std::move(task));
  work_cv_.Signal();
  return absl::OkStatus();
}

void WorkQueue::Shutdown() {
  MutexLock join_lock(&join_mu_);
  {
    MutexLock lock(&mu_);
    shutting_down_ = true;
    work_cv_.SignalAll();
  }
  // Workers exit only once the queue is empty, so joining drains it.
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
}

size_t WorkQueue::pending() const {
  MutexLock lock(&mu_);
  return tasks_.size();
}

void WorkQueue::WorkerLoop() {
  while (true) {
    Task task;
    {
      MutexLock lock(&mu_);
      while (tasks_.empty() && !shutting_down_) {
        CondVarWait(&work_cv_, &mu_);
      }
      if (tasks_.empty()) return;  // shutting down and drained
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    std::move(task)();
  }
}

}  // namespace gpumig
