// Timeline: see timeline.h for the contract.
#include "core/fence/timeline.h"

#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/mutex.h"

namespace gpumig {
namespace {

// Context 0 means "not on a timeline"; allocation starts at 1.
std::atomic<uint64_t> next_fence_context{1};

}  // namespace

uint64_t AllocateFenceContexts(uint64_t n) {
  // Zero contexts would hand out an id that the next caller also gets.
  if (n == 0) n = 1;
  return next_fence_context.fetch_add(n, std::memory_order_relaxed);
}

Timeline::Timeline(absl::string_view name)
    : context_(AllocateFenceContexts(1)), name_(name) {}

Timeline::Link Timeline::Append(absl::string_view fence_name) {
  MutexLock lock(&mu_);
  Link link;
  link.fence = Fence::Create(fence_name, context_, ++seqno_);
  link.previous = std::exchange(last_, link.fence);
  return link;
}

FenceRef Timeline::last_fence() const {
  MutexLock lock(&mu_);
  return last_;
}

uint64_t Timeline::last_seqno() const {
  MutexLock lock(&mu_);
  return seqno_;
}

absl::StatusOr<bool> Timeline::IsLater(const Fence& a, const Fence& b) const {
  for (const Fence* f : {&a, &b}) {
    if (f->context() != context_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "fence '", f->name(), "' (context ", f->context(),
          ") is not on timeline '", name_, "' (context ", context_, ")"));
    }
  }
  // Seqnos are 64-bit and never wrap in practice: a plain compare.
  return a.seqno() > b.seqno();
}

}  // namespace gpumig
