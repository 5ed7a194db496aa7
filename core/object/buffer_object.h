// BufferObject: a client's buffer -- size, an ordered placement list, an
// owner, and where it lives now (a Region and the SgTable there).
//
// Lifecycle of the content state (write-once, like i915's unknown_state):
//
//   state    entered by                                    accesses
//   ok       creation                                      allowed
//   unknown  a move's blit failed and no fallback was      all refused:
//            possible (the failsafe work marks it)         DATA_LOSS
//
// The unknown flag is set by the failsafe work BEFORE it signals the move
// fence, with release semantics; readers check it after observing the move
// fence signalled (acquire), so nobody who waited can miss it.
//
// Ordering of content accesses: `move_fence` is the fence of the last
// placement change (its failsafe fence; it carries an error only when the
// object went unknown). `exec_fence` is the last engine command that touched
// the content (Exec). Engine commands are ordered by the in-order engine; CPU
// accesses wait for both fences. `io_mu()` is held across a CPU access and
// across a placement change, so neither sees the other half done; eviction
// only try-locks it and skips busy objects.
//
// Thread-safe.
#ifndef GPUMIG_CORE_OBJECT_BUFFER_OBJECT_H_
#define GPUMIG_CORE_OBJECT_BUFFER_OBJECT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/base/principal.h"  // Principal (owner of an object)
#include "core/fence/fence.h"
#include "core/mem/region.h"
#include "core/mem/sg_table.h"

namespace gpumig {

enum class ObjectState { kOk, kUnknown };

class BufferObject {
 public:
  BufferObject(uint64_t id, uint64_t size, std::vector<Region*> placements,
               Principal owner, std::string label, bool require_cpu_access);
  BufferObject(const BufferObject&) = delete;
  BufferObject& operator=(const BufferObject&) = delete;

  // Constant after construction.
  uint64_t id() const { return id_; }
  uint64_t size() const { return size_; }
  const std::vector<Region*>& placements() const { return placements_; }
  const Principal& owner() const { return owner_; }
  const std::string& label() const { return label_; }
  bool require_cpu_access() const { return require_cpu_access_; }
  absl::Time create_time() const { return create_time_; }

  // Current placement; region() is null before the first placement.
  Region* region() const ABSL_LOCKS_EXCLUDED(mu_);
  SgTableRef sg() const ABSL_LOCKS_EXCLUDED(mu_);
  FenceRef move_fence() const ABSL_LOCKS_EXCLUDED(mu_);
  FenceRef exec_fence() const ABSL_LOCKS_EXCLUDED(mu_);
  void SetPlacement(SgTableRef sg, FenceRef move_fence)
      ABSL_LOCKS_EXCLUDED(mu_);
  void SetExecFence(FenceRef fence) ABSL_LOCKS_EXCLUDED(mu_);
  // Drops the placement (destroy). Returns the table it held.
  SgTableRef ClearPlacement() ABSL_LOCKS_EXCLUDED(mu_);

  // The placement after `region` in the placement list, or null.
  Region* NextPlacementAfter(const Region* region) const;
  bool AllowedIn(const Region* region) const;

  // Pinning: pinned objects are never evicted.
  int pin_count() const { return pin_count_.load(std::memory_order_relaxed); }
  int Pin() { return pin_count_.fetch_add(1, std::memory_order_relaxed) + 1; }
  // FAILED_PRECONDITION-worthy misuse (unpin at 0) returns -1, changes nothing.
  int Unpin();

  // Content state.
  bool unknown() const { return unknown_.load(std::memory_order_acquire); }
  ObjectState state() const {
    return unknown() ? ObjectState::kUnknown : ObjectState::kOk;
  }
  // Why the object is unknown ("" while ok).
  std::string unknown_reason() const ABSL_LOCKS_EXCLUDED(mu_);
  // The fence whose failsafe marked the object unknown (0 while ok, or when
  // the marker named none). Not necessarily the current move fence: moves
  // queued behind the failed one end unknown too, but did not cause it.
  uint64_t unknown_fence_id() const ABSL_LOCKS_EXCLUDED(mu_);
  // Sets the flag once (later calls keep the first reason and fence).
  // Returns true if this call changed the state.
  bool MarkUnknown(const absl::Status& why, uint64_t fence_id = 0)
      ABSL_LOCKS_EXCLUDED(mu_);
  // OK, or DATA_LOSS naming the object and the reason it is unknown.
  absl::Status CheckAccess() const;

  // Destroyed objects refuse further placement changes and IO.
  bool destroyed() const { return destroyed_.load(std::memory_order_acquire); }
  void MarkDestroyed() { destroyed_.store(true, std::memory_order_release); }

  // Held across CPU IO and placement changes (see the file comment).
  absl::Mutex* io_mu() const ABSL_LOCK_RETURNED(io_mu_) { return &io_mu_; }

 private:
  // Constant after construction.
  const uint64_t id_;
  const uint64_t size_;
  const std::vector<Region*> placements_;
  const Principal owner_;
  const std::string label_;
  const bool require_cpu_access_;
  const absl::Time create_time_;

  mutable absl::Mutex io_mu_;
  std::atomic<int> pin_count_{0};
  std::atomic<bool> unknown_{false};
  std::atomic<bool> destroyed_{false};

  mutable absl::Mutex mu_;
  SgTableRef sg_ ABSL_GUARDED_BY(mu_);
  FenceRef move_fence_ ABSL_GUARDED_BY(mu_);
  FenceRef exec_fence_ ABSL_GUARDED_BY(mu_);
  std::string unknown_reason_ ABSL_GUARDED_BY(mu_);
  uint64_t unknown_fence_id_ ABSL_GUARDED_BY(mu_) = 0;
};

using BufferObjectRef = std::shared_ptr<BufferObject>;

}  // namespace gpumig

#endif  // GPUMIG_CORE_OBJECT_BUFFER_OBJECT_H_
