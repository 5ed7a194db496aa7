// FenceRegistry: the fences clients can name by id -- every clear, migration,
// eviction and Exec the MemoryManager started -- with what each did, and the
// event stream behind FenceService.Watch.
//
// History is bounded: unsignalled fences are always kept, and so are
// retained ones (an object's current move or Exec fence: the manager
// retains it while the object names it); other signalled fences are kept
// newest-first up to `history` entries, then forgotten (a lookup of a
// forgotten id is NOT_FOUND, as for an id never issued).
//
// Events are delivered to subscribers from the signalling thread (a fence
// callback): sinks must not block and must not call back into the manager.
//
// Thread-safe.
#ifndef GPUMIG_CORE_MANAGER_FENCE_REGISTRY_H_
#define GPUMIG_CORE_MANAGER_FENCE_REGISTRY_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/fence/fence.h"
#include "core/fence/fence_array.h"
#include "core/migrate/migrator.h"

namespace gpumig {

// kArray: a batch's FenceArray over its entries' fences (FenceInfo::array).
enum class FenceKind { kClear, kMigrate, kEvict, kExec, kArray };
absl::string_view FenceKindName(FenceKind kind);

// A snapshot of one registered fence.
struct FenceInfo {
  uint64_t id = 0;
  FenceKind kind = FenceKind::kMigrate;
  bool signaled = false;
  absl::Status error;  // final once signaled
  // What the copy engine reported for a move's blit (signaled moves only):
  // differs from `error` when a fallback consumed the engine's error.
  absl::Status engine_error;
  MoveOutcome outcome = MoveOutcome::kPending;  // kPending for Exec
  uint64_t object_id = 0;
  std::string owner;       // principal name
  std::string src_region;  // "" for clears and Exec
  std::string dst_region;
  absl::Time created;
  absl::Time signaled_at = absl::InfinitePast();
  // kArray only: the array (members and outcome counts).
  std::shared_ptr<const FenceArray> array;
};

class FenceRegistry {
 public:
  using Sink = std::function<void(const FenceInfo&)>;

  explicit FenceRegistry(size_t history);
  FenceRegistry(const FenceRegistry&) = delete;
  FenceRegistry& operator=(const FenceRegistry&) = delete;
  ~FenceRegistry();

  // Registers `fence`. `move` may be null (Exec).
  void Add(FenceRef fence, FenceKind kind, uint64_t object_id,
           std::string owner, std::shared_ptr<MoveRecord> move,
           std::string dst_region = "") ABSL_LOCKS_EXCLUDED(mu_);

  // Registers a batch's fence array (kind kArray, object 0).
  void AddArray(std::shared_ptr<const FenceArray> array, std::string owner)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Keeps `id` queryable until a matching Release() (counted). Unknown ids
  // are ignored.
  void Retain(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  void Release(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);

  // NOT_FOUND if unknown (or forgotten).
  absl::StatusOr<FenceInfo> Get(uint64_t id) const ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<FenceRef> GetFence(uint64_t id) const ABSL_LOCKS_EXCLUDED(mu_);

  // Subscribers receive every fence's info once, when it signals.
  uint64_t Subscribe(Sink sink) ABSL_LOCKS_EXCLUDED(sinks_mu_);
  void Unsubscribe(uint64_t id) ABSL_LOCKS_EXCLUDED(sinks_mu_);
  size_t subscribers() const ABSL_LOCKS_EXCLUDED(sinks_mu_);

  size_t pending() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until no registered fence is pending, or `deadline`. Returns
  // whether everything signalled.
  bool WaitAllSignaled(absl::Time deadline) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    FenceRef fence;
    FenceKind kind;
    uint64_t object_id;
    std::string owner;
    std::shared_ptr<MoveRecord> move;
    std::string dst_region;
    std::shared_ptr<const FenceArray> array;
    int retained = 0;
    bool signaled = false;  // OnSignaled ran
  };
  // Queues a signalled, unretained entry for forgetting; prunes.
  void AgeLocked(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static FenceInfo Snapshot(const Entry& e);
  void OnSignaled(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_, sinks_mu_);

  const size_t history_;
  // Lifetime token: callbacks that outlive the registry see it expired.
  std::shared_ptr<FenceRegistry*> self_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> signaled_order_ ABSL_GUARDED_BY(mu_);
  size_t pending_ ABSL_GUARDED_BY(mu_) = 0;
  mutable absl::CondVar drained_cv_;  // Signalled when pending_ drops to 0.

  mutable absl::Mutex sinks_mu_;
  uint64_t next_sink_ ABSL_GUARDED_BY(sinks_mu_) = 1;
  absl::flat_hash_map<uint64_t, std::shared_ptr<Sink>> sinks_
      ABSL_GUARDED_BY(sinks_mu_);
};

}  // namespace gpumig

#endif  // GPUMIG_CORE_MANAGER_FENCE_REGISTRY_H_
