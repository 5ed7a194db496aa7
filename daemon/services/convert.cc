#include "daemon/services/convert.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "daemon/services/handles.h"
#include "daemon/services/status_util.h"

namespace gpumig {
namespace daemon {
namespace {

v1::FenceKind KindToProto(FenceKind kind) {
  switch (kind) {
    case FenceKind::kClear:
      return v1::FENCE_KIND_CLEAR;
    case FenceKind::kMigrate:
      return v1::FENCE_KIND_MIGRATE;
    case FenceKind::kEvict:
      return v1::FENCE_KIND_EVICT;
    case FenceKind::kExec:
      return v1::FENCE_KIND_EXEC;
    case FenceKind::kArray:
      return v1::FENCE_KIND_ARRAY;
  }
  return v1::FENCE_KIND_UNSPECIFIED;
}

bool IsEngineKind(FaultKind kind) {
  return kind == FaultKind::kWedgeEngine || kind == FaultKind::kEngineLatency;
}

}  // namespace

int64_t UnixNanos(absl::Time t) {
  if (t == absl::InfinitePast()) return 0;
  return absl::ToUnixNanos(t);
}

void ObjectToProto(const ObjectInfo& info, v1::Object* out) {
  out->set_handle(FormatHandle(info.id));
  out->set_size_bytes(info.size);
  for (const std::string& p : info.placements) out->add_placements(p);
  out->set_region(info.region);
  const bool unknown = info.state == ObjectState::kUnknown;
  out->set_state(unknown ? v1::OBJECT_STATE_UNKNOWN : v1::OBJECT_STATE_OK);
  if (unknown) {
    out->set_unknown_reason(info.unknown_reason);
    out->set_unknown_fence_id(info.unknown_fence_id);
  }
  out->set_pin_count(static_cast<uint32_t>(std::max(0, info.pin_count)));
  out->set_label(info.label);
  out->set_owner(info.owner);
  out->set_move_fence_id(info.move_fence_id);
  // Fence ids grow monotonically, so the later of the two is the latest.
  out->set_last_fence_id(std::max(info.move_fence_id, info.exec_fence_id));
  out->set_created_unix_nanos(UnixNanos(info.created));
  out->set_require_cpu_access(info.require_cpu_access);
  out->set_cpu_accessible(info.cpu_accessible);
}

v1::FenceOutcome OutcomeOf(const FenceInfo& info) {
  if (!info.signaled) return v1::FENCE_OUTCOME_UNSPECIFIED;
  switch (info.outcome) {
    case MoveOutcome::kBlitOk:
      return v1::FENCE_OUTCOME_BLIT_OK;
    case MoveOutcome::kFallbackCopy:
      return v1::FENCE_OUTCOME_FALLBACK_COPY;
    case MoveOutcome::kFallbackClear:
      return v1::FENCE_OUTCOME_FALLBACK_CLEAR;
    case MoveOutcome::kFallbackDeviceCopy:
      return v1::FENCE_OUTCOME_FALLBACK_DEVICE_COPY;
    case MoveOutcome::kFallbackDeviceClear:
      return v1::FENCE_OUTCOME_FALLBACK_DEVICE_CLEAR;
    case MoveOutcome::kUnknownState:
      return v1::FENCE_OUTCOME_UNKNOWN_STATE;
    case MoveOutcome::kFailed:
      return v1::FENCE_OUTCOME_FAILED;
    case MoveOutcome::kPending:
      break;
  }
  // No move record (Exec), or a move fence force-signalled before its work
  // recorded an outcome (shutdown).
  return info.error.ok() ? v1::FENCE_OUTCOME_BLIT_OK : v1::FENCE_OUTCOME_FAILED;
}

void FenceToProto(const FenceInfo& info, v1::FenceStatus* out) {
  out->set_fence_id(info.id);
  out->set_state(info.signaled ? v1::FENCE_STATE_SIGNALED
                               : v1::FENCE_STATE_PENDING);
  const v1::FenceOutcome outcome = OutcomeOf(info);
  out->set_outcome(outcome);
  if (info.signaled) {
    out->set_error_code(static_cast<int32_t>(info.error.code()));
    out->set_error_message(std::string(info.error.message()));
    switch (outcome) {
      case v1::FENCE_OUTCOME_FALLBACK_COPY:
      case v1::FENCE_OUTCOME_FALLBACK_CLEAR:
      case v1::FENCE_OUTCOME_FALLBACK_DEVICE_COPY:
      case v1::FENCE_OUTCOME_FALLBACK_DEVICE_CLEAR:
        // The fallback consumed the engine's error: report what it was.
        out->set_engine_error_code(
            static_cast<int32_t>(info.engine_error.code()));
        out->set_engine_error_message(std::string(info.engine_error.message()));
        break;
      case v1::FENCE_OUTCOME_UNKNOWN_STATE:
      case v1::FENCE_OUTCOME_FAILED: {
        // The engine's own report where the move recorded one, else the
        // fence's error (Exec, or a fence signalled at shutdown).
        const absl::Status& engine =
            info.engine_error.ok() ? info.error : info.engine_error;
        out->set_engine_error_code(static_cast<int32_t>(engine.code()));
        out->set_engine_error_message(std::string(engine.message()));
        break;
      }
      default:
        break;
    }
  }
  out->set_kind(KindToProto(info.kind));
  if (info.object_id != 0) out->set_handle(FormatHandle(info.object_id));
  out->set_source_region(info.src_region);
  out->set_target_region(info.dst_region);
  out->set_created_unix_nanos(UnixNanos(info.created));
  if (info.signaled) out->set_signaled_unix_nanos(UnixNanos(info.signaled_at));
  if (info.array != nullptr) {
    v1::FenceArray* a = out->mutable_array();
    for (const FenceRef& m : info.array->members()) {
      a->add_member_fence_ids(m->id());
    }
    const FenceArrayCounts c = info.array->counts();
    a->set_members(c.members);
    a->set_blit_ok(c.blit_ok);
    a->set_fallback(c.fallback);
    a->set_unknown_state(c.unknown_state);
    a->set_failed(c.failed);
    a->set_pending(c.pending);
  }
}

v1::EventKind EventKindOf(const FenceInfo& info) {
  switch (OutcomeOf(info)) {
    case v1::FENCE_OUTCOME_BLIT_OK:
      return v1::EVENT_KIND_BLIT_OK;
    case v1::FENCE_OUTCOME_FALLBACK_COPY:
    case v1::FENCE_OUTCOME_FALLBACK_CLEAR:
    case v1::FENCE_OUTCOME_FALLBACK_DEVICE_COPY:
    case v1::FENCE_OUTCOME_FALLBACK_DEVICE_CLEAR:
      return v1::EVENT_KIND_FALLBACK_TAKEN;
    case v1::FENCE_OUTCOME_UNKNOWN_STATE:
      return v1::EVENT_KIND_UNKNOWN_STATE;
    default:
      return v1::EVENT_KIND_FAILED;
  }
}

void RegionCountersToProto(const RegionCounters& c, v1::RegionCounters* out) {
  out->set_evictions(c.evictions);
  out->set_blits(c.blits);
  out->set_blit_failures(c.blit_failures);
  out->set_fallback_copies(c.fallback_copies);
  out->set_fallback_clears(c.fallback_clears);
  out->set_fallback_device(c.fallback_device);
  out->set_unknown_state_marks(c.unknown_state_marks);
  out->set_bytes_migrated_in(c.bytes_migrated_in);
  out->set_bytes_migrated_out(c.bytes_migrated_out);
}

void RegionToProto(const RegionInfo& info, v1::Region* out) {
  out->set_name(info.name);
  out->set_kind(info.kind == RegionKind::kLmem ? v1::REGION_KIND_LMEM
                                               : v1::REGION_KIND_SMEM);
  out->set_size_bytes(info.size);
  out->set_aperture_bytes(info.aperture);
  out->set_allocated_bytes(info.usage.allocated_bytes);
  out->set_free_bytes(info.usage.free_bytes);
  out->set_largest_free_block_bytes(info.usage.largest_free_block);
  const uint64_t aperture_free =
      std::min(info.usage.free_aperture_bytes, info.aperture);
  out->set_aperture_allocated_bytes(info.aperture - aperture_free);
  out->set_min_block_bytes(info.chunk_size);
  out->set_objects(info.objects);
  out->set_unknown_state_objects(info.unknown_objects);
  RegionCountersToProto(info, out->mutable_counters());
  out->set_eviction_timeline_seqno(info.eviction_timeline_seqno);
  out->set_last_eviction_fence_id(info.last_eviction_fence_id);
}

absl::StatusOr<FaultSpec> FaultSpecFromProto(
    const v1::FaultSpec& spec, const std::vector<std::string>& regions,
    uint64_t random_seed) {
  FaultSpec out;
  switch (spec.kind()) {
    case v1::FAULT_KIND_FAIL_BLIT:
      out.kind = FaultKind::kFailBlit;
      break;
    case v1::FAULT_KIND_FAIL_CLEAR:
      out.kind = FaultKind::kFailClear;
      break;
    case v1::FAULT_KIND_FAIL_WORK_ALLOCATION:
      out.kind = FaultKind::kFailWorkAllocation;
      break;
    case v1::FAULT_KIND_BAN_MEMCPY:
      out.kind = FaultKind::kBanMemcpy;
      break;
    case v1::FAULT_KIND_WEDGE_ENGINE:
      out.kind = FaultKind::kWedgeEngine;
      break;
    case v1::FAULT_KIND_ENGINE_LATENCY:
      out.kind = FaultKind::kEngineLatency;
      break;
    default:
      return FieldError("spec.kind", "required: one of the FaultKind values");
  }

  const v1::FaultTrigger& t = spec.trigger();
  switch (t.trigger_case()) {
    case v1::FaultTrigger::kNextN:
      if (t.next_n() == 0) {
        return FieldError("spec.trigger.next_n", "must be greater than 0");
      }
      out.trigger = FaultTrigger::kNextN;
      out.next_n = t.next_n();
      break;
    case v1::FaultTrigger::kProbability:
      // Written so that NaN fails too.
      if (!(t.probability().p() >= 0.0 && t.probability().p() <= 1.0)) {
        return FieldError(
            "spec.trigger.probability.p",
            absl::StrCat(t.probability().p(), " is outside [0, 1]"));
      }
      out.trigger = FaultTrigger::kProbability;
      out.probability = t.probability().p();
      out.seed =
          t.probability().seed() != 0 ? t.probability().seed() : random_seed;
      break;
    case v1::FaultTrigger::kAlways:
      if (!t.always()) return FieldError("spec.trigger.always", "must be true");
      out.trigger = FaultTrigger::kAlways;
      break;
    default:
      return FieldError("spec.trigger",
                        "required: one of next_n, probability, always");
  }

  if (!spec.region().empty()) {
    if (std::find(regions.begin(), regions.end(), spec.region()) ==
        regions.end()) {
      return FieldError("spec.region",
                        absl::StrCat("unknown region \"", spec.region(), "\""));
    }
    out.region = spec.region();
  }

  switch (spec.op()) {
    case v1::FENCE_KIND_UNSPECIFIED:
      break;
    case v1::FENCE_KIND_CLEAR:
      out.op = "clear";
      break;
    case v1::FENCE_KIND_MIGRATE:
      out.op = "copy";
      break;
    case v1::FENCE_KIND_EVICT:
      out.op = "evict";
      break;
    case v1::FENCE_KIND_EXEC:
      return FieldError("spec.op",
                        "EXEC cannot be scoped (Exec commands are affected "
                        "only by WEDGE_ENGINE and ENGINE_LATENCY, unscoped)");
    default:
      return FieldError("spec.op", "not a FenceKind value");
  }
  if (IsEngineKind(out.kind) && !out.op.empty()) {
    return FieldError("spec.op",
                      "WEDGE_ENGINE and ENGINE_LATENCY are not scoped by "
                      "operation; leave op unset");
  }

  if (out.kind == FaultKind::kEngineLatency) {
    if (spec.latency_us() == 0) {
      return FieldError("spec.latency_us", "required (> 0) for ENGINE_LATENCY");
    }
    out.latency = absl::Microseconds(spec.latency_us());
  } else if (spec.latency_us() != 0) {
    return FieldError("spec.latency_us", "only for ENGINE_LATENCY");
  }
  return out;
}

void FaultSpecToProto(const FaultSpec& spec, v1::FaultSpec* out) {
  switch (spec.kind) {
    case FaultKind::kFailBlit:
      out->set_kind(v1::FAULT_KIND_FAIL_BLIT);
      break;
    case FaultKind::kFailClear:
      out->set_kind(v1::FAULT_KIND_FAIL_CLEAR);
      break;
    case FaultKind::kFailWorkAllocation:
      out->set_kind(v1::FAULT_KIND_FAIL_WORK_ALLOCATION);
      break;
    case FaultKind::kBanMemcpy:
      out->set_kind(v1::FAULT_KIND_BAN_MEMCPY);
      break;
    case FaultKind::kWedgeEngine:
      out->set_kind(v1::FAULT_KIND_WEDGE_ENGINE);
      break;
    case FaultKind::kEngineLatency:
      out->set_kind(v1::FAULT_KIND_ENGINE_LATENCY);
      break;
  }
  v1::FaultTrigger* t = out->mutable_trigger();
  switch (spec.trigger) {
    case FaultTrigger::kNextN:
      t->set_next_n(spec.next_n);
      break;
    case FaultTrigger::kProbability:
      t->mutable_probability()->set_p(spec.probability);
      t->mutable_probability()->set_seed(spec.seed);
      break;
    case FaultTrigger::kAlways:
      t->set_always(true);
      break;
  }
  out->set_region(spec.region);
  if (spec.op == "clear") out->set_op(v1::FENCE_KIND_CLEAR);
  if (spec.op == "copy") out->set_op(v1::FENCE_KIND_MIGRATE);
  if (spec.op == "evict") out->set_op(v1::FENCE_KIND_EVICT);
  if (spec.kind == FaultKind::kEngineLatency) {
    out->set_latency_us(
        static_cast<uint32_t>(absl::ToInt64Microseconds(spec.latency)));
  }
}

void FaultToProto(const FaultInfo& info, v1::Fault* out) {
  out->set_id(info.id);
  FaultSpecToProto(info.spec, out->mutable_spec());
  out->set_fired_count(info.fired);
  out->set_exhausted(info.exhausted);
  out->set_created_unix_nanos(UnixNanos(info.created));
}

}  // namespace daemon
}  // namespace gpumig
