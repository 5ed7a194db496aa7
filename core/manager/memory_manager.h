// MemoryManager: the one façade the daemon calls. It owns the Device, the
// FaultInjector, the failsafe WorkQueue, the Migrator, every BufferObject and
// the FenceRegistry, and it decides placement and eviction.
//
// Every call takes the calling Principal. Objects belong to the principal
// that created them: another principal gets PERMISSION_DENIED "permission
// denied" and learns nothing else; admins may Get/List/Destroy any object
// but content calls (Read, Write, Exec, Migrate, Pin) are owner-only.
//
// Status codes used throughout (the daemon passes them on unchanged; they
// are the codes docs/api.md promises, and messages name the request field
// first, "<field>: <problem>"):
//   INVALID_ARGUMENT    bad size, region name, placement list, label;
//                       overlapping copy ranges of one object
//   OUT_OF_RANGE        an offset/length beyond the object's size
//   NOT_FOUND           no such object or fence
//   PERMISSION_DENIED   another principal's object or fence
//   RESOURCE_EXHAUSTED  no room even after eviction; quota
//   DATA_LOSS           object in unknown state (every access refused)
//   FAILED_PRECONDITION pinned object cannot move; unpin at 0
//   ABORTED             a move failed synchronously; nothing changed
//   DEADLINE_EXCEEDED   a wait ran out
//   UNAVAILABLE         shutting down
//
// Locking: mu_ guards the object table, quotas and per-region placement
// counts, and serialises eviction and migration submission. CreateObject's
// fast path allocates and clears outside mu_ (the object is unpublished, and
// Region's allocator has its own lock); it takes mu_ only to reserve quota,
// to evict when the preferred region is full, and to publish. mu_ is never
// held while
// waiting for a fence except on the failsafe's synchronous path. Object IO
// waits outside mu_ and holds only the object's io_mu(). Fence callbacks
// never take mu_.
//
// Thread-safe.
#ifndef GPUMIG_CORE_MANAGER_MEMORY_MANAGER_H_
#define GPUMIG_CORE_MANAGER_MEMORY_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/region_counters.h"
#include "core/device/device.h"
#include "core/fault/fault_injector.h"
#include "core/fence/fence_array.h"
#include "core/fence/work_queue.h"
#include "core/manager/fence_registry.h"
#include "core/migrate/migrator.h"
#include "core/object/buffer_object.h"

namespace gpumig {

struct ManagerOptions {
  int work_threads = 2;         // failsafe WorkQueue workers
  size_t fence_history = 4096;  // signalled fences kept for lookup
  uint64_t default_quota = 0;   // bytes per principal; 0 = unlimited
  absl::flat_hash_map<std::string, uint64_t> quotas;  // by principal name
  uint64_t max_object_size = 0;                       // 0 = the largest region
  // Object sizes must be multiples of this (the API's page, 4096, in the
  // daemon); 0 accepts any size (core tests use odd sizes).
  uint64_t page_bytes = 0;
};

struct ObjectInfo {
  uint64_t id = 0;
  uint64_t size = 0;
  std::vector<std::string> placements;
  std::string region;  // "" if unplaced
  ObjectState state = ObjectState::kOk;
  std::string unknown_reason;
  int pin_count = 0;
  std::string label;
  std::string owner;
  uint64_t move_fence_id = 0;
  uint64_t exec_fence_id = 0;
  // The fence whose failsafe made the object unknown (0 while ok).
  uint64_t unknown_fence_id = 0;
  absl::Time created;
  bool require_cpu_access = false;
  bool cpu_accessible = false;
};

// A region now: its configuration, occupancy and (inherited) cumulative
// counters, common/region_counters.h.
struct RegionInfo : RegionCounters {
  std::string name;
  RegionKind kind = RegionKind::kLmem;
  uint64_t size = 0;
  uint64_t aperture = 0;
  uint64_t chunk_size = 0;
  RegionUsage usage;
  uint64_t objects = 0;  // objects placed here
  // Of those, in unknown state now (RegionCounters::unknown_state_marks
  // counts every mark, and never drops).
  uint64_t unknown_objects = 0;
  uint64_t eviction_timeline_seqno = 0;
  uint64_t last_eviction_fence_id = 0;
};

struct ManagerStats {
  uint64_t objects = 0;
  uint64_t object_bytes = 0;
  uint64_t unknown_state_objects = 0;  // live objects in unknown state now
  uint64_t fences_created = 0;
  size_t fences_pending = 0;
  size_t fence_history = 0;
  size_t watchers = 0;
  uint64_t engine_inflight = 0;
  bool engine_wedged = false;
  // Times placement had to make room by evicting (one per single call that
  // evicted; one per region per batch, see MemoryManager::MigrateBatch).
  uint64_t eviction_passes = 0;
};

class MemoryManager {
 public:
  // Takes ownership of both. `device` must have been created with `faults`
  // (the engine consults it). INVALID_ARGUMENT if the device has no regions.
  static absl::StatusOr<std::unique_ptr<MemoryManager>> Create(
      std::unique_ptr<FaultInjector> faults, std::unique_ptr<Device> device,
      ManagerOptions options = {});
  MemoryManager(const MemoryManager&) = delete;
  MemoryManager& operator=(const MemoryManager&) = delete;
  // Shuts the engine down, drains the failsafe works, drops every object.
  ~MemoryManager();

  static constexpr size_t kMaxLabelBytes = 256;
  static constexpr int kMaxPinCount = 0x7fffffff;

  struct CreateRequest {
    uint64_t size = 0;
    // Preference order; empty = all (the RPC requires a list: the proto has
    // no spelling for "all").
    std::vector<std::string> placements;
    bool require_cpu_access = false;  // LMEM placement inside aperture
    bool pin = false;
    std::string label;  // at most kMaxLabelBytes, UTF-8
  };
  struct CreateResult {
    uint64_t object_id = 0;
    uint64_t fence_id = 0;  // the creation clear's failsafe fence
  };
  // Allocates (evicting if needed) in the first placement with room and
  // clears it; content reads as zeros.
  // INVALID_ARGUMENT: "size_bytes: ..." 0, not a multiple of
  //   options.page_bytes, or over the largest allowed object (or, with
  //   require_cpu_access, over the aperture of an LMEM placement);
  //   "placements[i]: ..." a region listed twice or unknown; "label: ..."
  //   over kMaxLabelBytes or not UTF-8. Nothing changes.
  // RESOURCE_EXHAUSTED: no room even after eviction; the quota.
  // ABORTED: the clear failed synchronously; nothing was created.
  absl::StatusOr<CreateResult> CreateObject(const Principal& who,
                                            const CreateRequest& request);
  // Drops the object; its memory returns once in-flight blits finish.
  absl::Status DestroyObject(const Principal& who, uint64_t id);
  absl::StatusOr<ObjectInfo> GetObject(const Principal& who, uint64_t id);
  // GetObject for each id, with one hold of the manager lock (a batch's
  // reply); entry i is what GetObject(who, ids[i]) would return.
  std::vector<absl::StatusOr<ObjectInfo>> GetObjects(
      const Principal& who, absl::Span<const uint64_t> ids);
  // The caller's objects (every object for an admin with `all`), by id.
  std::vector<ObjectInfo> ListObjects(const Principal& who, bool all);

  // Content IO. Waits (until `deadline`) for the object's pending moves and
  // Exec commands. Objects outside the CPU aperture go through the engine.
  // DATA_LOSS: unknown state. OUT_OF_RANGE "offset: ...": [offset, offset +
  // size) not inside the object (checked without overflow).
  // ABORTED: the engine failed the transfer (a Read returned nothing, a Write
  // may have written part of the range); retry.
  absl::Status Write(const Principal& who, uint64_t id, uint64_t offset,
                     absl::Span<const uint8_t> data, absl::Time deadline);
  absl::Status Read(const Principal& who, uint64_t id, uint64_t offset,
                    absl::Span<uint8_t> out, absl::Time deadline);
  // The length of [offset, offset + length) in the caller's object, `length`
  // 0 meaning "to the end" (a streamed Read sizes itself with it).
  // NOT_FOUND, PERMISSION_DENIED (not the owner, admins included),
  // DATA_LOSS, OUT_OF_RANGE "offset: ...".
  absl::StatusOr<uint64_t> ResolveRange(const Principal& who, uint64_t id,
                                        uint64_t offset, uint64_t length);

  // Moves the object to `region` (must be in its placement list) and returns
  // the failsafe fence id at once. Already there: its current move fence.
  // INVALID_ARGUMENT "region: ..." empty, unknown, or not in the placement
  // list. FAILED_PRECONDITION if pinned.
  absl::StatusOr<uint64_t> Migrate(const Principal& who, uint64_t id,
                                   absl::string_view region);

  // Batches (core/manager/batch.cc). 1 to kMaxBatchEntries entries; a
  // malformed request (none, too many, an entry its single call would refuse
  // with INVALID_ARGUMENT before looking anything up, a repeated id) is
  // refused whole with INVALID_ARGUMENT "entries[i]...: ..." and nothing
  // changes. Otherwise every entry runs, independently and in request order;
  // `entries[i].status` is what the single call would have returned. The
  // batch's FenceArray over every submitted entry's fence is registered
  // (FenceKind::kArray) and its id returned. UNAVAILABLE when shutting down.
  static constexpr size_t kMaxBatchEntries = 4096;
  struct BatchEntry {
    absl::Status status;
    uint64_t object_id = 0;
    uint64_t fence_id = 0;  // 0 if the entry failed, and for destroys
    FenceRef fence;         // the fence of fence_id (ExecBatch only)
    // ExecBatch Checksum entries that were submitted: the FNV-1a 64 result,
    // valid once fence_id has signalled without error.
    std::shared_ptr<const uint64_t> checksum;
  };
  struct BatchResult {
    std::vector<BatchEntry> entries;
    uint64_t array_fence_id = 0;
    std::shared_ptr<const FenceArray> array;
  };
  // Each entry as CreateObject, all under one hold of the manager lock. A
  // region that is every entry's first placement and lacks room for their
  // total is made room in by ONE eviction pass for that total (as far as
  // evictable objects allow) before any entry allocates; an entry that still
  // finds no room (fragmentation) evicts on its own, as CreateObject would.
  absl::StatusOr<BatchResult> CreateBatch(
      const Principal& who, const std::vector<CreateRequest>& requests);
  struct MigrateEntry {
    uint64_t id = 0;
    std::string region;
  };
  // Each entry as Migrate; every placement decision is made under one hold
  // of the manager lock. Regions are checked first (malformed: unknown).
  // Eviction is once per target region for the total size of the entries
  // that will move there (objects of the batch are never its victims); see
  // CreateBatch.
  absl::StatusOr<BatchResult> MigrateBatch(
      const Principal& who, const std::vector<MigrateEntry>& entries);
  // Each entry as DestroyObject (ids must differ). The array is over the
  // destroyed objects' latest move and Exec fences.
  absl::StatusOr<BatchResult> DestroyBatch(const Principal& who,
                                           const std::vector<uint64_t>& ids);
  // One engine command of an ExecBatch.
  struct ExecEntry {
    enum class Op { kFill, kCopy, kChecksum };
    Op op = Op::kFill;
    uint64_t id = 0;          // Fill, Checksum: the object; Copy: destination
    uint64_t offset = 0;      // Fill, Checksum; Copy: destination offset
    uint64_t src = 0;         // Copy only: the source object
    uint64_t src_offset = 0;  // Copy only
    uint64_t length = 0;      // 0: to the end of the object (Copy: of src)
    uint8_t value = 0;        // Fill only
  };
  // Each entry as ExecFill / ExecCopy / ExecChecksum would, submitted in
  // request order under one hold of the manager lock, without waiting.
  // Entry codes: NOT_FOUND, PERMISSION_DENIED, DATA_LOSS (for any object
  // named), OUT_OF_RANGE (a range beyond its object; length 0 resolves to
  // the end first), INVALID_ARGUMENT (a Copy's ranges of one object
  // overlap). entries[i].object_id is the object acted on (a Copy's
  // destination); Checksum results arrive in entries[i].checksum.
  // Malformed: none, too many.
  absl::StatusOr<BatchResult> ExecBatch(const Principal& who,
                                        const std::vector<ExecEntry>& entries);

  // Returns the new pin count. Pinned objects are never evicted or moved.
  // RESOURCE_EXHAUSTED: the count would pass kMaxPinCount.
  absl::StatusOr<int> Pin(const Principal& who, uint64_t id);
  absl::StatusOr<int> Unpin(const Principal& who, uint64_t id);

  // GPU ops on the copy engine. Each returns the fence id at once. A
  // `length` of 0 means "to the end of the object" (of the source, for a
  // copy). Checked in this order: NOT_FOUND / PERMISSION_DENIED for each
  // object named, DATA_LOSS for an unknown-state one, OUT_OF_RANGE
  // "<offset parameter>: ..." for each range, INVALID_ARGUMENT "copy: ..."
  // for overlapping ranges of one object.
  absl::StatusOr<uint64_t> ExecFill(const Principal& who, uint64_t id,
                                    uint64_t offset, uint64_t length,
                                    uint8_t value);
  absl::StatusOr<uint64_t> ExecCopy(const Principal& who, uint64_t src,
                                    uint64_t dst, uint64_t src_offset,
                                    uint64_t dst_offset, uint64_t length);
  struct ChecksumResult {
    uint64_t fence_id = 0;
    uint64_t checksum = 0;  // FNV-1a 64, valid when the fence has no error
    absl::Status error;
  };
  // Waits for the result until `deadline`.
  absl::StatusOr<ChecksumResult> ExecChecksum(const Principal& who, uint64_t id,
                                              uint64_t offset, uint64_t length,
                                              absl::Time deadline);

  // Fences. NOT_FOUND, PERMISSION_DENIED (another principal's, non-admin).
  absl::StatusOr<FenceInfo> GetFence(const Principal& who, uint64_t fence_id);
  // DEADLINE_EXCEEDED if it has not signalled by `deadline`.
  absl::StatusOr<FenceInfo> WaitFence(const Principal& who, uint64_t fence_id,
                                      absl::Time deadline);

  // Regions.
  std::vector<RegionInfo> ListRegions();
  absl::StatusOr<RegionInfo> GetRegion(absl::string_view name);
  struct EvictResult {
    uint64_t objects_evicted = 0;
    uint64_t bytes_evicted = 0;
    uint64_t objects_skipped = 0;  // pinned, busy, unknown, or nowhere to go
    uint64_t last_fence_id = 0;    // the region's last eviction fence
  };
  // Evicts every evictable object out of `region` (TTM's evict-all).
  absl::StatusOr<EvictResult> EvictRegion(absl::string_view region);

  FenceRegistry& fences() { return fences_; }
  FaultInjector& faults() { return *faults_; }
  Device& device() { return *device_; }
  ManagerStats Stats();

  // Refuses new calls with UNAVAILABLE and waits (until `deadline`) for every
  // registered fence to signal. Returns whether all did.
  bool Shutdown(absl::Time deadline);
  bool shutting_down() const {
    return shutting_down_.load(std::memory_order_acquire);
  }

  // Allocator and accounting invariants; with no objects, every region's
  // allocated bytes must be zero. Waits (bounded) for registered fences to
  // signal first, so call it with no concurrent activity.
  absl::Status CheckInvariantsForTest();

 private:
  MemoryManager(std::unique_ptr<FaultInjector> faults,
                std::unique_ptr<Device> device, ManagerOptions options);

  absl::Status CheckLive() const;
  // Looks an object up and checks the caller may use it.
  absl::StatusOr<BufferObjectRef> LookupLocked(const Principal& who,
                                               uint64_t id, bool content)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<BufferObjectRef> Lookup(const Principal& who, uint64_t id,
                                         bool content) ABSL_LOCKS_EXCLUDED(mu_);
  // Migrate's body once the target is resolved; fills *fence on success.
  absl::StatusOr<uint64_t> MigrateLocked(const Principal& who, uint64_t id,
                                         Region* target, FenceRef* fence,
                                         std::shared_ptr<MoveRecord>* record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Registers a batch's array over `fences` (parallel to `records`).
  void RegisterArray(const Principal& who, std::vector<FenceRef> fences,
                     std::vector<std::shared_ptr<MoveRecord>> records,
                     BatchResult* result);
  absl::StatusOr<std::vector<Region*>> ResolvePlacements(
      const std::vector<std::string>& names) const;
  // Everything CreateObject refuses with INVALID_ARGUMENT, checked before
  // anything changes; returns the resolved placements.
  absl::StatusOr<std::vector<Region*>> ValidateCreate(
      const CreateRequest& request) const;
  // Allocates in `region`, evicting LRU objects if needed.
  absl::StatusOr<SgTableRef> AllocateWithEviction(Region* region, uint64_t size,
                                                  bool cpu,
                                                  const BufferObject* exclude)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evictable objects of `region`, least recently used first: unpinned, OK,
  // with another allowed placement, neither `exclude` nor a member of the
  // batch being placed (batch_members_).
  std::vector<BufferObjectRef> VictimsLocked(Region* region,
                                             const BufferObject* exclude)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A batch's one eviction pass in `region`: evicts victims in LRU order
  // until `need` bytes are free (`need_cpu` of them inside the aperture) or
  // none is left (the entries that then find no room fail alone, or evict
  // for themselves as the single call would). Counts one eviction pass if
  // it evicts anything.
  void EvictForBatchLocked(Region* region, uint64_t need, uint64_t need_cpu)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Quota: reserves `size` bytes for `who`, or RESOURCE_EXHAUSTED.
  absl::Status ReserveQuotaLocked(const Principal& who, uint64_t size)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnreserveQuotaLocked(const std::string& owner, uint64_t size)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // AllocateWithEviction in each placement in order; the last error if none
  // has room.
  absl::StatusOr<SgTableRef> AllocateInPlacementsLocked(
      const BufferObject& obj, const std::vector<Region*>& placements)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // DestroyObject's two halves: unpublish under mu_ (NOT_FOUND,
  // PERMISSION_DENIED), then, without mu_, wait out IO under way and drop
  // the placement.
  absl::StatusOr<BufferObjectRef> UnpublishLocked(const Principal& who,
                                                  uint64_t id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishDestroy(const BufferObjectRef& obj) ABSL_LOCKS_EXCLUDED(mu_);
  // Makes a cleared, unpublished object visible.
  void PublishLocked(const BufferObjectRef& obj, bool pin,
                     const Migrator::Result& cleared)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // CreateObject's whole path under mu_ (a CreateBatch entry); `placements`
  // already resolved.
  absl::StatusOr<CreateResult> CreateLocked(
      const Principal& who, const CreateRequest& request,
      const std::vector<Region*>& placements)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A one-object Exec command once mu_ is held: looks the object up for
  // content (NOT_FOUND, PERMISSION_DENIED, DATA_LOSS), resolves the range
  // (length 0: to the end; OUT_OF_RANGE), then, under its io_mu(), calls
  // `submit` with its table, the resolved length and the move it must
  // await, and registers the fence. `touch`: the command counts as a use
  // (LRU).
  absl::StatusOr<FenceRef> ExecOnObjectLocked(
      const Principal& who, uint64_t id, uint64_t offset, uint64_t length,
      bool touch,
      absl::FunctionRef<FenceRef(SgTableRef, uint64_t, CopyEngine::Deps)>
          submit) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The Exec commands' bodies once mu_ is held; each returns the fence.
  absl::StatusOr<FenceRef> ExecFillLocked(const Principal& who, uint64_t id,
                                          uint64_t offset, uint64_t length,
                                          uint8_t value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<FenceRef> ExecCopyLocked(const Principal& who, uint64_t src,
                                          uint64_t dst, uint64_t src_offset,
                                          uint64_t dst_offset, uint64_t length)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<FenceRef> ExecChecksumLocked(const Principal& who, uint64_t id,
                                              uint64_t offset, uint64_t length,
                                              std::shared_ptr<uint64_t> result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evicts `victim` (io_mu() held) to another allowed placement.
  absl::StatusOr<FenceRef> EvictLocked(const BufferObjectRef& victim,
                                       Region* from)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Registers an object's new move fence, retains it (the object names it)
  // and releases `previous`.
  void RegisterMove(const Migrator::Result& result, FenceKind kind,
                    const BufferObject& obj, const FenceRef& previous);
  // Registers an Exec fence as the last fence of `obj` (and `other`).
  void RegisterExec(const FenceRef& fence, BufferObject& obj,
                    BufferObject* other);
  void PlacedLocked(const BufferObject& obj) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  ObjectInfo InfoOf(const BufferObject& obj) const;
  bool CpuPlacementFor(const BufferObject& obj, const Region* region) const;
  uint64_t QuotaFor(const Principal& who) const;
  // Waits for the object's move and exec fences, then locks io_mu() with the
  // fences still signalled. Returns with io_mu() held on OK (and not held
  // otherwise). Clang's analysis cannot express "acquired iff the returned
  // absl::Status is OK", so LockForIo and its one caller DoIo opt out of it;
  // DoIo releases the lock with an absl::Cleanup right after LockForIo
  // succeeds.
  absl::Status LockForIo(const BufferObjectRef& obj,
                         absl::Time deadline) ABSL_NO_THREAD_SAFETY_ANALYSIS;
  absl::Status DoIo(const BufferObjectRef& obj, uint64_t offset,
                    uint64_t length, const uint8_t* in, uint8_t* out,
                    absl::Time deadline) ABSL_NO_THREAD_SAFETY_ANALYSIS;

  // Constant after construction. Destruction order matters: objects and the
  // registry go before the queue, the queue before the device, the device
  // before the injector.
  const ManagerOptions options_;
  std::unique_ptr<FaultInjector> faults_;
  std::unique_ptr<Device> device_;
  std::unique_ptr<WorkQueue> queue_;
  std::unique_ptr<Migrator> migrator_;
  uint64_t max_object_size_ = 0;

  std::atomic<bool> shutting_down_{false};
  std::atomic<uint64_t> fences_created_{0};
  std::atomic<uint64_t> eviction_passes_{0};
  FenceRegistry fences_;

  mutable absl::Mutex mu_;
  std::atomic<uint64_t> next_object_id_{1};
  absl::flat_hash_map<uint64_t, BufferObjectRef> objects_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> usage_ ABSL_GUARDED_BY(mu_);
  // While a batch places under mu_: its objects, never eviction victims.
  const absl::flat_hash_set<uint64_t>* batch_members_ ABSL_GUARDED_BY(mu_) =
      nullptr;
  // Objects placed in each region (RegionInfo::objects without a scan).
  absl::flat_hash_map<const Region*, uint64_t> placed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gpumig

#endif  // GPUMIG_CORE_MANAGER_MEMORY_MANAGER_H_
