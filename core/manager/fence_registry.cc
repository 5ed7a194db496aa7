#include "core/manager/fence_registry.h"

#include <utility>

#include "core/base/mutex.h"

namespace gpumig {

absl::string_view FenceKindName(FenceKind kind) {
  switch (kind) {
    case FenceKind::kClear:
      return "clear";
    case FenceKind::kMigrate:
      return "migrate";
    case FenceKind::kEvict:
      return "evict";
    case FenceKind::kExec:
      return "exec";
    case FenceKind::kArray:
      return "array";
  }
  return "unknown";
}

FenceRegistry::FenceRegistry(size_t history)
    : history_(history), self_(std::make_shared<FenceRegistry*>(this)) {}

FenceRegistry::~FenceRegistry() {
  // Callbacks still queued on live fences hold a weak_ptr to self_; once it
  // expires they do nothing.
  self_.reset();
}

void FenceRegistry::Add(FenceRef fence, FenceKind kind, uint64_t object_id,
                        std::string owner, std::shared_ptr<MoveRecord> move,
                        std::string dst_region) {
  const uint64_t id = fence->id();
  {
    MutexLock lock(&mu_);
    entries_[id] = Entry{fence,           kind,
                         object_id,       std::move(owner),
                         std::move(move), std::move(dst_region)};
    ++pending_;
  }
  std::weak_ptr<FenceRegistry*> weak = self_;
  absl::Status s = fence->AddCallback([weak, id](const Fence&) {
    if (std::shared_ptr<FenceRegistry*> self = weak.lock()) {
      (*self)->OnSignaled(id);
    }
  });
  if (!s.ok()) OnSignaled(id);  // Already signalled: run it ourselves.
}

void FenceRegistry::AddArray(std::shared_ptr<const FenceArray> array,
                             std::string owner) {
  const FenceRef fence = array->fence();
  const uint64_t id = fence->id();
  {
    MutexLock lock(&mu_);
    Entry e{fence, FenceKind::kArray, 0, std::move(owner), nullptr, ""};
    e.array = std::move(array);
    entries_[id] = std::move(e);
    ++pending_;
  }
  std::weak_ptr<FenceRegistry*> weak = self_;
  absl::Status s = fence->AddCallback([weak, id](const Fence&) {
    if (std::shared_ptr<FenceRegistry*> self = weak.lock()) {
      (*self)->OnSignaled(id);
    }
  });
  if (!s.ok()) OnSignaled(id);
}

void FenceRegistry::OnSignaled(uint64_t id) {
  FenceInfo info;
  {
    MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    info = Snapshot(it->second);
    if (--pending_ == 0) drained_cv_.SignalAll();
    it->second.signaled = true;
    if (it->second.retained == 0) AgeLocked(id);
  }
  std::vector<std::shared_ptr<Sink>> sinks;
  {
    MutexLock lock(&sinks_mu_);
    sinks.reserve(sinks_.size());
    for (const auto& [unused, sink] : sinks_) sinks.push_back(sink);
  }
  for (const auto& sink : sinks) (*sink)(info);
}

void FenceRegistry::AgeLocked(uint64_t id) {
  signaled_order_.push_back(id);
  // Forget the oldest unretained signalled entries beyond the history. An
  // id retained again after it was queued is skipped (it stays), and queued
  // again when released.
  while (signaled_order_.size() > history_) {
    const uint64_t old = signaled_order_.front();
    signaled_order_.pop_front();
    auto it = entries_.find(old);
    if (it != entries_.end() && it->second.retained == 0) entries_.erase(it);
  }
}

void FenceRegistry::Retain(uint64_t id) {
  MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it != entries_.end()) ++it->second.retained;
}

void FenceRegistry::Release(uint64_t id) {
  MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second.retained == 0) return;
  if (--it->second.retained == 0 && it->second.signaled) AgeLocked(id);
}

FenceInfo FenceRegistry::Snapshot(const Entry& e) {
  FenceInfo info;
  info.id = e.fence->id();
  info.kind = e.kind;
  info.signaled = e.fence->IsSignaled();
  if (info.signaled) {
    info.error = e.fence->error();
    info.signaled_at = e.fence->signal_time();
  }
  if (e.move != nullptr) {
    info.outcome = e.move->outcome.load(std::memory_order_acquire);
    if (info.signaled) info.engine_error = e.move->engine_error;
    info.src_region = e.move->src_region;
    info.dst_region = e.move->dst_region;
  } else {
    info.dst_region = e.dst_region;
  }
  info.object_id = e.object_id;
  info.owner = e.owner;
  info.array = e.array;
  if (e.array != nullptr && info.signaled) {
    // The worst member outcome (a fallback reads as kFallbackCopy).
    const FenceArrayCounts c = e.array->counts();
    info.outcome = c.unknown_state > 0 ? MoveOutcome::kUnknownState
                   : c.failed > 0      ? MoveOutcome::kFailed
                   : c.fallback > 0    ? MoveOutcome::kFallbackCopy
                                       : MoveOutcome::kBlitOk;
  }
  info.created = e.fence->create_time();
  return info;
}

absl::StatusOr<FenceInfo> FenceRegistry::Get(uint64_t id) const {
  MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    return absl::NotFoundError("no such fence (never issued, or forgotten)");
  }
  return Snapshot(it->second);
}

absl::StatusOr<FenceRef> FenceRegistry::GetFence(uint64_t id) const {
  MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) {
    return absl::NotFoundError("no such fence (never issued, or forgotten)");
  }
  return it->second.fence;
}

uint64_t FenceRegistry::Subscribe(Sink sink) {
  MutexLock lock(&sinks_mu_);
  const uint64_t id = next_sink_++;
  sinks_[id] = std::make_shared<Sink>(std::move(sink));
  return id;
}

void FenceRegistry::Unsubscribe(uint64_t id) {
  MutexLock lock(&sinks_mu_);
  sinks_.erase(id);
}

size_t FenceRegistry::subscribers() const {
  MutexLock lock(&sinks_mu_);
  return sinks_.size();
}

size_t FenceRegistry::pending() const {
  MutexLock lock(&mu_);
  return pending_;
}

size_t FenceRegistry::size() const {
  MutexLock lock(&mu_);
  return entries_.size();
}

bool FenceRegistry::WaitAllSignaled(absl::Time deadline) const {
  MutexLock lock(&mu_);
  while (pending_ != 0) {
    TsanRelease(&mu_);
    const bool timed_out = drained_cv_.WaitWithDeadline(&mu_, deadline);
    TsanAcquire(&mu_);
    if (timed_out) break;
  }
  return pending_ == 0;
}

}  // namespace gpumig
