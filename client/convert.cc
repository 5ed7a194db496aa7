// Conversion between the client library's structs (gpumig_client.h) and the
// gpumig.v1 messages: see convert.h.
#include "client/convert.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace gpumig::client::internal {

namespace pb = ::gpumig::v1;

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

absl::Status CodeToStatus(int32_t code, const std::string& message) {
  if (code == 0) return absl::OkStatus();
  if (code < 0 || code > 16) {
    return absl::UnknownError(
        absl::StrCat(message, " (unknown status code ", code, ")"));
  }
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

// --- Enums: one pair table each (convert.h) ---------------------------------

FenceState FromProto(pb::FenceState v) {
  return enums::LocalOf(kFenceStates, v, FenceState::kUnspecified);
}
FenceKind FromProto(pb::FenceKind v) {
  return enums::LocalOf(kFenceKinds, v, FenceKind::kUnspecified);
}
pb::FenceKind ToProto(FenceKind v) { return enums::ProtoOf(kFenceKinds, v); }
FenceOutcome FromProto(pb::FenceOutcome v) {
  return enums::LocalOf(kFenceOutcomes, v, FenceOutcome::kUnspecified);
}
ObjectState FromProto(pb::ObjectState v) {
  return enums::LocalOf(kObjectStates, v, ObjectState::kUnspecified);
}
RegionKind FromProto(pb::RegionKind v) {
  return enums::LocalOf(kRegionKinds, v, RegionKind::kUnspecified);
}
EventKind FromProto(pb::EventKind v) {
  return enums::LocalOf(kEventKinds, v, EventKind::kUnspecified);
}
pb::EventKind ToProto(EventKind v) { return enums::ProtoOf(kEventKinds, v); }
FaultKind FromProto(pb::FaultKind v) {
  return enums::LocalOf(kFaultKinds, v, FaultKind::kUnspecified);
}
pb::FaultKind ToProto(FaultKind v) { return enums::ProtoOf(kFaultKinds, v); }

// --- Message conversions ---------------------------------------------------

FenceStatus FromProto(const pb::FenceStatus& p) {
  FenceStatus f;
  f.fence_id = p.fence_id();
  f.state = FromProto(p.state());
  f.outcome = FromProto(p.outcome());
  f.error = CodeToStatus(p.error_code(), p.error_message());
  f.engine_error =
      CodeToStatus(p.engine_error_code(), p.engine_error_message());
  f.kind = FromProto(p.kind());
  f.handle = p.handle();
  f.source_region = p.source_region();
  f.target_region = p.target_region();
  f.timeline = p.timeline();
  f.seqno = p.seqno();
  f.created_unix_nanos = p.created_unix_nanos();
  f.signaled_unix_nanos = p.signaled_unix_nanos();
  return f;
}

ObjectInfo FromProto(const pb::Object& p) {
  ObjectInfo o;
  o.handle = p.handle();
  o.size_bytes = p.size_bytes();
  o.placements.assign(p.placements().begin(), p.placements().end());
  o.region = p.region();
  o.state = FromProto(p.state());
  o.unknown_reason = p.unknown_reason();
  o.unknown_fence_id = p.unknown_fence_id();
  o.pin_count = p.pin_count();
  o.label = p.label();
  o.owner = p.owner();
  o.move_fence_id = p.move_fence_id();
  o.last_fence_id = p.last_fence_id();
  o.created_unix_nanos = p.created_unix_nanos();
  o.require_cpu_access = p.require_cpu_access();
  o.cpu_accessible = p.cpu_accessible();
  return o;
}

RegionInfo FromProto(const pb::Region& p) {
  RegionInfo r;
  r.name = p.name();
  r.kind = FromProto(p.kind());
  r.size_bytes = p.size_bytes();
  r.aperture_bytes = p.aperture_bytes();
  r.allocated_bytes = p.allocated_bytes();
  r.free_bytes = p.free_bytes();
  r.largest_free_block_bytes = p.largest_free_block_bytes();
  r.aperture_allocated_bytes = p.aperture_allocated_bytes();
  r.min_block_bytes = p.min_block_bytes();
  r.objects = p.objects();
  r.unknown_state_objects = p.unknown_state_objects();
  const pb::RegionCounters& c = p.counters();
  r.counters.evictions = c.evictions();
  r.counters.blits = c.blits();
  r.counters.blit_failures = c.blit_failures();
  r.counters.fallback_copies = c.fallback_copies();
  r.counters.fallback_clears = c.fallback_clears();
  r.counters.unknown_state_marks = c.unknown_state_marks();
  r.counters.bytes_migrated_in = c.bytes_migrated_in();
  r.counters.bytes_migrated_out = c.bytes_migrated_out();
  r.eviction_timeline_seqno = p.eviction_timeline_seqno();
  r.last_eviction_fence_id = p.last_eviction_fence_id();
  return r;
}

FaultSpec FromProto(const pb::FaultSpec& p) {
  FaultSpec s;
  s.kind = FromProto(p.kind());
  switch (p.trigger().trigger_case()) {
    case pb::FaultTrigger::kNextN:
      s.next_n = p.trigger().next_n();
      break;
    case pb::FaultTrigger::kProbability:
      s.probability = p.trigger().probability().p();
      s.seed = p.trigger().probability().seed();
      break;
    case pb::FaultTrigger::kAlways:
      s.always = p.trigger().always();
      break;
    default:
      break;
  }
  s.region = p.region();
  s.op = FromProto(p.op());
  s.latency_us = p.latency_us();
  return s;
}

void ToProto(const FaultSpec& s, pb::FaultSpec* p) {
  p->set_kind(ToProto(s.kind));
  if (s.always) {
    p->mutable_trigger()->set_always(true);
  } else if (s.probability.has_value()) {
    pb::FaultTrigger::Probability* prob =
        p->mutable_trigger()->mutable_probability();
    prob->set_p(*s.probability);
    prob->set_seed(s.seed);
  } else {
    // next_n 0 is sent as is: the daemon answers INVALID_ARGUMENT.
    p->mutable_trigger()->set_next_n(s.next_n);
  }
  p->set_region(s.region);
  p->set_op(ToProto(s.op));
  p->set_latency_us(s.latency_us);
}

FaultInfo FromProto(const pb::Fault& p) {
  FaultInfo f;
  f.id = p.id();
  f.spec = FromProto(p.spec());
  f.matched_count = p.matched_count();
  f.fired_count = p.fired_count();
  f.exhausted = p.exhausted();
  f.created_unix_nanos = p.created_unix_nanos();
  return f;
}

WatchEvent FromProto(const pb::Event& p) {
  WatchEvent e;
  e.event_seqno = p.event_seqno();
  e.kind = FromProto(p.kind());
  if (p.has_fence()) e.fence = FromProto(p.fence());
  e.handle = p.handle();
  e.region = p.region();
  e.time_unix_nanos = p.time_unix_nanos();
  e.dropped_events = p.dropped_events();
  return e;
}

SubmitResult MakeSubmitResult(uint64_t fence_id, bool has_fence,
                              const pb::FenceStatus& fence) {
  SubmitResult r;
  r.fence_id = fence_id;
  if (has_fence) r.fence = FromProto(fence);
  return r;
}

DaemonInfo FromProto(const pb::GetInfoResponse& r) {
  DaemonInfo info;
  info.version = r.version();
  info.backend = r.backend();
  info.device_name = r.device_name();
  for (const pb::DrmDevice& d : r.drm_devices()) {
    DrmDeviceInfo device;
    device.driver = d.driver();
    device.bus_id = d.bus_id();
    device.render_node = d.render_node();
    device.primary_node = d.primary_node();
    device.pci_vendor_id = d.pci_vendor_id();
    device.pci_device_id = d.pci_device_id();
    info.drm_devices.push_back(std::move(device));
  }
  info.start_unix_nanos = r.start_unix_nanos();
  info.uptime_nanos = r.uptime_nanos();
  info.fault_injection_enabled = r.fault_injection_enabled();
  info.caller.name = r.caller().name();
  info.caller.uid = r.caller().uid();
  info.caller.is_admin = r.caller().is_admin();
  info.limits.max_chunk_bytes = r.limits().max_chunk_bytes();
  info.limits.page_bytes = r.limits().page_bytes();
  info.limits.max_list_page_size = r.limits().max_list_page_size();
  info.shared_buffer_socket = r.shared_buffer_socket();
  return info;
}

DaemonStats FromProto(const pb::GetStatsResponse& r) {
  DaemonStats stats;
  for (const pb::RpcMethodStats& m : r.rpcs()) {
    stats.rpcs.push_back({m.method(), m.calls(), m.errors()});
  }
  stats.objects = r.objects();
  stats.unknown_state_objects = r.unknown_state_objects();
  stats.fences_pending = r.fences_pending();
  stats.fence_history_size = r.fence_history_size();
  stats.fences_created = r.fences_created();
  stats.watchers = r.watchers();
  stats.engine_wedged = r.engine_wedged();
  for (const pb::Region& region : r.regions()) {
    stats.regions.push_back(FromProto(region));
  }
  const pb::SharedBufferStats& sb = r.shared_buffers();
  stats.shared_buffers = {sb.enabled(),
                          sb.buffers(),
                          sb.bytes(),
                          sb.connections(),
                          sb.registrations(),
                          sb.rejections(),
                          sb.unregistrations(),
                          sb.bytes_written(),
                          sb.bytes_read(),
                          sb.max_buffers_per_principal(),
                          sb.max_bytes_per_principal(),
                          sb.max_total_bytes()};
  return stats;
}

SelfTestResult FromProto(const pb::SelfTestResponse& r) {
  SelfTestResult result;
  result.passed = r.passed();
  result.canary_bytes_written = r.canary_bytes_written();
  result.objects_checked = r.objects_checked();
  result.violations = r.violations();
  result.details.assign(r.details().begin(), r.details().end());
  return result;
}

}  // namespace gpumig::client::internal
