#include "core/object/buffer_object.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/mutex.h"

namespace gpumig {

BufferObject::BufferObject(uint64_t id, uint64_t size,
                           std::vector<Region*> placements, Principal owner,
                           std::string label, bool require_cpu_access)
    : id_(id),
      size_(size),
      placements_(std::move(placements)),
      owner_(std::move(owner)),
      label_(std::move(label)),
      require_cpu_access_(require_cpu_access),
      create_time_(absl::Now()) {}

Region* BufferObject::region() const {
  MutexLock lock(&mu_);
  return sg_ == nullptr ? nullptr : sg_->region();
}

SgTableRef BufferObject::sg() const {
  MutexLock lock(&mu_);
  return sg_;
}

FenceRef BufferObject::move_fence() const {
  MutexLock lock(&mu_);
  return move_fence_;
}

FenceRef BufferObject::exec_fence() const {
  MutexLock lock(&mu_);
  return exec_fence_;
}

void BufferObject::SetPlacement(SgTableRef sg, FenceRef move_fence) {
  MutexLock lock(&mu_);
  sg_ = std::move(sg);
  move_fence_ = std::move(move_fence);
}

void BufferObject::SetExecFence(FenceRef fence) {
  MutexLock lock(&mu_);
  exec_fence_ = std::move(fence);
}

SgTableRef BufferObject::ClearPlacement() {
  MutexLock lock(&mu_);
  return std::move(sg_);
}

Region* BufferObject::NextPlacementAfter(const Region* region) const {
  auto it = std::find(placements_.begin(), placements_.end(), region);
  if (it == placements_.end() || ++it == placements_.end()) return nullptr;
  return *it;
}

bool BufferObject::AllowedIn(const Region* region) const {
  return std::find(placements_.begin(), placements_.end(), region) !=
         placements_.end();
}

int BufferObject::Unpin() {
  int current = pin_count_.load(std::memory_order_relaxed);
  while (current > 0) {
    if (pin_count_.compare_exchange_weak(current, current - 1,
                                         std::memory_order_relaxed)) {
      return current - 1;
    }
  }
  return -1;
}

std::string BufferObject::unknown_reason() const {
  MutexLock lock(&mu_);
  return unknown_reason_;
}

uint64_t BufferObject::unknown_fence_id() const {
  MutexLock lock(&mu_);
  return unknown_fence_id_;
}

bool BufferObject::MarkUnknown(const absl::Status& why, uint64_t fence_id) {
  MutexLock lock(&mu_);
  if (unknown_.load(std::memory_order_relaxed)) return false;
  unknown_reason_ = std::string(why.message());
  unknown_fence_id_ = fence_id;
  // Release: whoever sees the flag sees the reason.
  unknown_.store(true, std::memory_order_release);
  return true;
}

absl::Status BufferObject::CheckAccess() const {
  if (!unknown()) return absl::OkStatus();
  return absl::DataLossError(
      absl::StrCat("object content is in unknown state and every access is "
                   "refused: ",
                   unknown_reason()));
}

}  // namespace gpumig
