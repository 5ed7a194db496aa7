// Timeline: a fence context that hands out ordered seqnos; fences of one
// timeline signal in seqno order (FenceWork's timeline mode, and each Region's
// eviction ordering).
//
// Every fence created on or attached to a Timeline carries the timeline's
// context and the next seqno. The contract of a context is dma-fence's: a
// fence with a later seqno signals no earlier than every earlier fence of the
// same context, so "the last fence" of a timeline stands for all of them.
// FenceWork::Create(..., timeline) enforces this by making each work await
// the timeline's previous fence for ordering only (its error is not
// inherited: one failed eviction does not poison every later one).
//
// Thread-safe.
#ifndef GPUMIG_CORE_FENCE_TIMELINE_H_
#define GPUMIG_CORE_FENCE_TIMELINE_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/fence/fence.h"

namespace gpumig {

class Timeline {
 public:
  // Allocates a fresh process-unique context (never 0).
  explicit Timeline(absl::string_view name);
  Timeline(const Timeline&) = delete;
  Timeline& operator=(const Timeline&) = delete;

  uint64_t context() const { return context_; }
  const std::string& name() const { return name_; }

  // Creates a fence with the next seqno and records it as the last fence.
  // Returns the new fence and the previous last fence (null if none). The
  // caller is responsible for signalling them in order (an in-order engine
  // does; FenceWork does it by awaiting `previous`).
  struct Link {
    FenceRef fence;
    FenceRef previous;
  };
  Link Append(absl::string_view fence_name) ABSL_LOCKS_EXCLUDED(mu_);

  // The most recently appended fence, or null if none was ever appended.
  FenceRef last_fence() const ABSL_LOCKS_EXCLUDED(mu_);
  // The seqno of the last appended fence (0 before the first).
  uint64_t last_seqno() const ABSL_LOCKS_EXCLUDED(mu_);

  // Whether `a` is later than `b` on this timeline. INVALID_ARGUMENT if
  // either fence belongs to another context (dma_fence_is_later refuses them).
  absl::StatusOr<bool> IsLater(const Fence& a, const Fence& b) const;

 private:
  const uint64_t context_;
  const std::string name_;

  mutable absl::Mutex mu_;
  uint64_t seqno_ ABSL_GUARDED_BY(mu_) = 0;
  FenceRef last_ ABSL_GUARDED_BY(mu_);
};

// Allocates `n` consecutive fresh fence contexts; returns the first.
uint64_t AllocateFenceContexts(uint64_t n = 1);

}  // namespace gpumig

#endif  // GPUMIG_CORE_FENCE_TIMELINE_H_
