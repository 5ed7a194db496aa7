#include "core/migrate/migrator.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/fence/fence_work.h"

namespace gpumig {
namespace {

// Everything the failsafe needs, owned by its work: the tables stay
// referenced (and their blocks allocated) until the work is done.
struct FailsafeState {
  Device* device = nullptr;
  BufferObjectRef obj;
  SgTableRef src;  // null for a clear
  SgTableRef dst;
  MoveKind kind = MoveKind::kMigrate;
  // Decided at submission, like i915_ttm_memcpy_allowed().
  bool banned = false;         // FaultInjector kBanMemcpy: no fallback at all
  bool cpu_reachable = false;  // both sides inside their CPU apertures
  std::string no_cpu_reason;
  std::shared_ptr<MoveRecord> record;
  // The failsafe work's fence: what the object names as the culprit if
  // this move leaves it unknown. Set before the work is committed.
  uint64_t fence_id = 0;
};

// The fallback after a failed blit: a CPU memcpy/memset where both sides
// are CPU-visible, else the device's independent path (Device::FallbackCopy;
// UNIMPLEMENTED on backends without one). Returns the outcome reached, or
// why no fallback was possible.
absl::StatusOr<MoveOutcome> Fallback(const FailsafeState& s) {
  const bool clear = s.src == nullptr;
  if (s.banned) {
    return absl::FailedPreconditionError("memcpy banned by fault injection");
  }
  // A source in unknown state cannot be copied by anyone.
  if (!clear && s.obj->unknown()) {
    return absl::DataLossError(absl::StrCat("source already in unknown state (",
                                            s.obj->unknown_reason(), ")"));
  }
  Device& device = *s.device;
  const uint64_t n = s.obj->size();
  if (s.cpu_reachable) {
    absl::Status cpu = clear ? CpuFill(device, *s.dst, 0, s.dst->size(), 0)
                             : CpuCopy(device, *s.src, 0, *s.dst, 0, n);
    if (!cpu.ok()) return cpu;
    return clear ? MoveOutcome::kFallbackClear : MoveOutcome::kFallbackCopy;
  }
  absl::Status dev = clear ? device.FallbackFill(*s.dst, 0, s.dst->size(), 0)
                           : device.FallbackCopy(*s.src, 0, *s.dst, 0, n);
  if (absl::IsUnimplemented(dev)) {
    return absl::FailedPreconditionError(s.no_cpu_reason);
  }
  if (!dev.ok()) return dev;
  return clear ? MoveOutcome::kFallbackDeviceClear
               : MoveOutcome::kFallbackDeviceCopy;
}

void CountFallback(LiveRegionCounters& c, MoveOutcome outcome) {
  switch (outcome) {
    case MoveOutcome::kFallbackDeviceCopy:
      c.fallback_device.fetch_add(1, std::memory_order_relaxed);
      [[fallthrough]];
    case MoveOutcome::kFallbackCopy:
      c.fallback_copies.fetch_add(1, std::memory_order_relaxed);
      break;
    case MoveOutcome::kFallbackDeviceClear:
      c.fallback_device.fetch_add(1, std::memory_order_relaxed);
      [[fallthrough]];
    case MoveOutcome::kFallbackClear:
      c.fallback_clears.fetch_add(1, std::memory_order_relaxed);
      break;
    default:
      break;
  }
}

// The failsafe decision: CPU copy if both sides are CPU-visible, else the
// device's independent fallback path, else mark the object unknown. Runs
// after the blit signalled, whatever its result; returns the error the
// failsafe fence carries.
absl::Status RunFailsafe(const FailsafeState& s, const absl::Status& blit) {
  LiveRegionCounters& counters = s.dst->region()->counters();
  if (blit.ok()) {
    s.record->outcome.store(MoveOutcome::kBlitOk, std::memory_order_release);
    return absl::OkStatus();
  }
  counters.blit_failures.fetch_add(1, std::memory_order_relaxed);
  s.record->engine_error = blit;
  absl::StatusOr<MoveOutcome> fallback = Fallback(s);
  if (fallback.ok()) {
    CountFallback(counters, *fallback);
    s.record->outcome.store(*fallback, std::memory_order_release);
    return absl::OkStatus();
  }
  // No fallback: refuse every access from now on. The flag is published
  // before the fence signals (the fence's release store orders it).
  absl::Status error = absl::DataLossError(absl::StrCat(
      MoveKindOp(s.kind), " blit into region ", s.dst->region()->name(),
      " failed (", blit.message(), ") and no fallback was possible (",
      fallback.status().message(), ")"));
  if (s.obj->MarkUnknown(error, s.fence_id)) {
    counters.unknown_state_marks.fetch_add(1, std::memory_order_relaxed);
  }
  s.record->outcome.store(MoveOutcome::kUnknownState,
                          std::memory_order_release);
  return error;
}

}  // namespace

absl::string_view MoveKindOp(MoveKind kind) {
  switch (kind) {
    case MoveKind::kClear:
      return "clear";
    case MoveKind::kMigrate:
      return "copy";
    case MoveKind::kEvict:
      return "evict";
  }
  return "unknown";
}

absl::string_view MoveOutcomeName(MoveOutcome outcome) {
  switch (outcome) {
    case MoveOutcome::kPending:
      return "pending";
    case MoveOutcome::kBlitOk:
      return "blit_ok";
    case MoveOutcome::kFallbackCopy:
      return "fallback_copy";
    case MoveOutcome::kFallbackClear:
      return "fallback_clear";
    case MoveOutcome::kFallbackDeviceCopy:
      return "fallback_device_copy";
    case MoveOutcome::kFallbackDeviceClear:
      return "fallback_device_clear";
    case MoveOutcome::kUnknownState:
      return "unknown_state";
    case MoveOutcome::kFailed:
      return "failed";
  }
  return "unknown";
}

Migrator::Migrator(Device* device, FaultInjector* faults, WorkQueue* queue)
    : device_(device), faults_(faults), queue_(queue) {}

absl::StatusOr<Migrator::Result> Migrator::Clear(const BufferObjectRef& obj,
                                                 SgTableRef dst) {
  return Move(obj, nullptr, std::move(dst), MoveKind::kClear);
}

absl::StatusOr<Migrator::Result> Migrator::Migrate(const BufferObjectRef& obj,
                                                   SgTableRef dst) {
  SgTableRef src = obj->sg();
  if (src == nullptr) {
    return absl::FailedPreconditionError("object has no placement to copy");
  }
  return Move(obj, std::move(src), std::move(dst), MoveKind::kMigrate);
}

absl::StatusOr<Migrator::EvictResult> Migrator::Evict(
    const BufferObjectRef& obj, SgTableRef dst) {
  SgTableRef src = obj->sg();
  if (src == nullptr) {
    return absl::FailedPreconditionError("object has no placement to evict");
  }
  Region* from = src->region();
  absl::StatusOr<Result> moved =
      Move(obj, src, std::move(dst), MoveKind::kEvict);
  if (!moved.ok()) return moved.status();

  // Order this eviction on the source region's timeline (new placements in
  // the region await its last fence before their first write). The
  // coalescing fence carries the failsafe's error (an eviction that left its
  // object unknown), not the previous eviction's.
  std::unique_ptr<FenceWork> coalesce = FenceWork::CreateCoalescing(
      absl::StrCat("evict-", from->name()), &from->eviction_timeline());
  absl::Status s = coalesce->Await(moved->fence);
  if (s.ok()) s = coalesce->CommitImmediate();
  if (!s.ok()) return s;  // Not reachable: a fresh work accepts one await.
  from->counters().evictions.fetch_add(1, std::memory_order_relaxed);
  EvictResult result{*std::move(moved), coalesce->fence()};
  // Pipelined: the blocks are free for new owners now; their first write
  // awaits `eviction_fence` (Region::PendingEvictionFence).
  src->ReleaseEarly();
  return result;
}

absl::StatusOr<Migrator::Result> Migrator::Move(const BufferObjectRef& obj,
                                                SgTableRef src, SgTableRef dst,
                                                MoveKind kind) {
  const absl::string_view op = MoveKindOp(kind);
  Region* dst_region = dst->region();
  const std::string& dst_name = dst_region->name();

  auto record = std::make_shared<MoveRecord>();
  record->kind = kind;
  record->object_id = obj->id();
  record->src_region = src == nullptr ? "" : src->region()->name();
  record->dst_region = dst_name;
  record->bytes = obj->size();

  auto state = std::make_shared<FailsafeState>();
  state->device = device_;
  state->obj = obj;
  state->src = src;
  state->dst = dst;
  state->kind = kind;
  state->record = record;
  // Decided up front, like i915_ttm_memcpy_allowed().
  state->banned = faults_ != nullptr && faults_->MemcpyBanned(op, dst_name);
  if (!dst->cpu_accessible()) {
    state->no_cpu_reason = absl::StrCat(
        "destination in ", dst_name, " lies outside the CPU-visible aperture");
  } else if (src != nullptr && !src->cpu_accessible()) {
    state->no_cpu_reason =
        absl::StrCat("source in ", src->region()->name(),
                     " lies outside the CPU-visible aperture");
  } else {
    state->cpu_reachable = true;
  }

  // The blit awaits the object's last move and, in the destination region,
  // the last eviction (its blocks may be the ones we just got).
  CopyEngine::Deps deps;
  if (FenceRef f = obj->move_fence(); f != nullptr && !f->IsSignaled()) {
    deps.push_back(std::move(f));
  } else if (f != nullptr && !f->error().ok()) {
    deps.push_back(std::move(f));  // Propagates: the source is unknown.
  }
  if (FenceRef f = dst_region->PendingEvictionFence(); f != nullptr) {
    deps.push_back(std::move(f));
  }
  const bool fail_blit =
      faults_ != nullptr && faults_->ShouldFailBlit(op, dst_name);
  CopyEngine& engine = device_->engine();
  FenceRef blit = src == nullptr ? engine.Fill(dst, 0, dst->size(), 0,
                                               std::move(deps), fail_blit)
                                 : engine.Copy(src, 0, dst, 0, obj->size(),
                                               std::move(deps), fail_blit);
  dst_region->counters().blits.fetch_add(1, std::memory_order_relaxed);
  dst_region->counters().bytes_migrated_in.fetch_add(obj->size(),
                                                     std::memory_order_relaxed);
  if (src != nullptr) {
    src->region()->counters().bytes_migrated_out.fetch_add(
        obj->size(), std::memory_order_relaxed);
  }

  const bool work_allocation_fails =
      faults_ != nullptr && faults_->ShouldFailWorkAllocation(op, dst_name);
  if (!work_allocation_fails) {
    absl::StatusOr<std::unique_ptr<FenceWork>> work = FenceWork::Create(
        absl::StrCat("failsafe-", op),
        [state](absl::Status blit_error) {
          return RunFailsafe(*state, blit_error);
        },
        queue_);
    if (work.ok()) {
      // A clean blit needs only "blit ok" recorded: signal from the engine's
      // callback; errors (the memcpy fallback) go to the queue.
      state->fence_id = (*work)->fence()->id();
      absl::Status s = (*work)->RunInlineWhenNoError();
      if (s.ok()) s = (*work)->Await(blit);
      if (s.ok()) s = (*work)->Commit();
      if (s.ok()) {
        FenceRef fence = (*work)->fence();
        obj->SetPlacement(dst, fence);
        return Result{std::move(fence), std::move(record)};
      }
    }
  }

  // The failsafe work could not be set up: wait for the blit here and fall
  // back inline. Never mark unknown-state on this path.
  record->synchronous.store(true, std::memory_order_relaxed);
  blit->Wait();
  absl::Status blit_error = blit->error();
  if (blit_error.ok()) {
    record->outcome.store(MoveOutcome::kBlitOk, std::memory_order_release);
    obj->SetPlacement(dst, blit);
    return Result{std::move(blit), std::move(record)};
  }
  dst_region->counters().blit_failures.fetch_add(1, std::memory_order_relaxed);
  record->engine_error = blit_error;
  absl::StatusOr<MoveOutcome> fallback = Fallback(*state);
  if (fallback.ok()) {
    CountFallback(dst_region->counters(), *fallback);
    record->outcome.store(*fallback, std::memory_order_release);
    FenceRef done = Fence::CreateSignaled(absl::StrCat("sync-", op));
    obj->SetPlacement(dst, done);
    return Result{std::move(done), std::move(record)};
  }
  const std::string why(fallback.status().message());
  record->outcome.store(MoveOutcome::kFailed, std::memory_order_release);
  return absl::AbortedError(absl::StrCat(
      op, " into region ", dst_name,
      " failed: the failsafe work could not be set up, the blit failed (",
      blit_error.message(), ") and no fallback was possible (", why,
      "); nothing changed"));
}

}  // namespace gpumig
