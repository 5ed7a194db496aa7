// Migrator: clears, copies and evicts buffer objects with copy-engine blits,
// guarded by the failsafe: a failed blit never leaves a destination that
// exposes another owner's or stale data.
//
// Every blit or clear gets a failsafe FenceWork awaiting the blit's fence.
// Its work always runs, whatever the blit's result, and decides:
//
// clang-format off
//   blit result | CPU fallback possible(*) | outcome         | failsafe fence
//   ------------+--------------------------+-----------------+-------------------------------
//   ok          | -                        | kBlitOk         | OK
//   error       | yes                      | kFallbackCopy / | OK, content exact
//               |                          | kFallbackClear  |
//   error       | no                       | kUnknownState   | DATA_LOSS; object marked
//               |                          |                 | unknown BEFORE the signal
// clang-format on
//
//   (*) memcpy not banned, and either both source and destination lie
//       inside their regions' CPU-visible apertures (SMEM always does): a
//       CPU memcpy/memset (kFallbackCopy/kFallbackClear); or the device has
//       an independent transfer path for memory the CPU cannot reach
//       (Device::FallbackCopy/FallbackFill, e.g. CUDA's LMEM):
//       kFallbackDeviceCopy/kFallbackDeviceClear.
//
// If the failsafe work cannot be set up (FaultInjector kFailWorkAllocation),
// the Migrator waits for the blit synchronously and falls back inline; it
// never marks unknown-state there. With memcpy also impossible the move fails
// with ABORTED and the object keeps its old placement.
//
// Every destination is guarded, SMEM included: our SMEM is a reused pool, not
// the kernel's zeroed pages.
//
// A new placement awaits the object's move fence and the destination
// region's pending eviction fence: pipelined eviction hands freed
// blocks to new owners at once, so their first write must come after it.
//
// Thread-compatible: the caller (MemoryManager) serialises placement changes
// and holds the object's io_mu() across each call. The works it starts run
// on the WorkQueue and never take a MemoryManager lock.
#ifndef GPUMIG_CORE_MIGRATE_MIGRATOR_H_
#define GPUMIG_CORE_MIGRATE_MIGRATOR_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/device/device.h"
#include "core/fault/fault_injector.h"
#include "core/fence/fence.h"
#include "core/fence/work_queue.h"
#include "core/mem/sg_table.h"
#include "core/object/buffer_object.h"

namespace gpumig {

enum class MoveKind { kClear, kMigrate, kEvict };
// The FaultInjector op name of a kind: "clear", "copy", "evict".
absl::string_view MoveKindOp(MoveKind kind);

enum class MoveOutcome {
  kPending,
  kBlitOk,
  kFallbackCopy,
  kFallbackClear,
  kFallbackDeviceCopy,   // the device's independent path (Device::FallbackCopy)
  kFallbackDeviceClear,  // ... (Device::FallbackFill)
  kUnknownState,
  kFailed,  // synchronous failure: nothing changed
};
absl::string_view MoveOutcomeName(MoveOutcome outcome);

// What one move did; shared with the fence registry. `outcome` is final
// before the move's fence signals.
struct MoveRecord {
  MoveKind kind = MoveKind::kMigrate;
  uint64_t object_id = 0;
  std::string src_region;  // "" for a clear
  std::string dst_region;
  uint64_t bytes = 0;
  std::atomic<MoveOutcome> outcome{MoveOutcome::kPending};
  // Set when the failsafe work could not be set up and the move ran
  // synchronously.
  std::atomic<bool> synchronous{false};
  // What the copy engine reported for the blit (OK if it succeeded). Written
  // before the move's fence signals; read only after observing the signal.
  absl::Status engine_error;
};

class Migrator {
 public:
  // `faults` may be null. All pointers must outlive the Migrator and every
  // work it started (drain `queue` before destroying the device).
  Migrator(Device* device, FaultInjector* faults, WorkQueue* queue);

  struct Result {
    FenceRef fence;  // the failsafe fence: what clients wait on
    std::shared_ptr<MoveRecord> record;
  };

  // First placement of `obj`: clears `dst` and installs it.
  // ABORTED: synchronous path failed; `obj` stays unplaced.
  absl::StatusOr<Result> Clear(const BufferObjectRef& obj, SgTableRef dst);

  // Copies `obj` from its current table into `dst` and installs `dst`.
  // FAILED_PRECONDITION: obj has no placement. ABORTED: synchronous path
  // failed; `obj` keeps its old placement.
  absl::StatusOr<Result> Migrate(const BufferObjectRef& obj, SgTableRef dst);

  // Like Migrate, and then (pipelined eviction) appends a coalescing fence on
  // the source region's eviction timeline and releases the source blocks to
  // the allocator at once. `eviction_fence` is that timeline fence.
  struct EvictResult {
    Result move;
    FenceRef eviction_fence;
  };
  absl::StatusOr<EvictResult> Evict(const BufferObjectRef& obj, SgTableRef dst);

 private:
  absl::StatusOr<Result> Move(const BufferObjectRef& obj, SgTableRef src,
                              SgTableRef dst, MoveKind kind);

  Device* const device_;
  FaultInjector* const faults_;
  WorkQueue* const queue_;
};

}  // namespace gpumig

#endif  // GPUMIG_CORE_MIGRATE_MIGRATOR_H_
