// gpumigctl's rendering of results: see ctl_render.h.
#include "client/ctl_render.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"

namespace gpumig::cli {

namespace gc = ::gpumig::client;

std::string StatusText(const absl::Status& s) {
  if (s.ok()) return "none";
  return absl::StrCat(absl::StatusCodeToString(s.code()), ": ", s.message());
}

void JsonFence(JsonWriter& w, const gc::FenceStatus& f) {
  w.BeginObject();
  w.FieldUint("fence_id", f.fence_id);
  w.Field("state", gc::FenceStateName(f.state));
  w.Field("outcome", gc::FenceOutcomeName(f.outcome));
  w.FieldInt("error_code", static_cast<int>(f.error.code()));
  w.Field("error", absl::StatusCodeToString(f.error.code()));
  w.Field("error_message", f.error.message());
  w.FieldInt("engine_error_code", static_cast<int>(f.engine_error.code()));
  w.Field("engine_error", absl::StatusCodeToString(f.engine_error.code()));
  w.Field("engine_error_message", f.engine_error.message());
  w.Field("kind", gc::FenceKindName(f.kind));
  w.Field("handle", f.handle);
  w.Field("source_region", f.source_region);
  w.Field("target_region", f.target_region);
  w.Field("timeline", f.timeline);
  w.FieldUint("seqno", f.seqno);
  w.FieldInt("created_unix_nanos", f.created_unix_nanos);
  w.FieldInt("signaled_unix_nanos", f.signaled_unix_nanos);
  if (f.array.has_value()) {
    const gc::FenceArrayInfo& a = *f.array;
    w.Key("array");
    w.BeginObject();
    w.Key("member_fence_ids");
    w.BeginArray();
    for (uint64_t id : a.member_fence_ids) w.Uint(id);
    w.EndArray();
    w.FieldUint("members", a.members);
    w.FieldUint("blit_ok", a.blit_ok);
    w.FieldUint("fallback", a.fallback);
    w.FieldUint("unknown_state", a.unknown_state);
    w.FieldUint("failed", a.failed);
    w.FieldUint("pending", a.pending);
    w.FieldUint("refused", a.refused);
    w.EndObject();
  }
  w.EndObject();
}

void JsonFenceField(JsonWriter& w, const std::optional<gc::FenceStatus>& f) {
  w.Key("fence");
  if (f.has_value()) {
    JsonFence(w, *f);
  } else {
    w.Null();
  }
}

std::string HumanFence(const gc::FenceStatus& f) {
  KeyValueBlock kv;
  kv.Add("fence", absl::StrCat(f.fence_id));
  kv.Add("state", gc::FenceStateName(f.state));
  kv.Add("outcome", gc::FenceOutcomeName(f.outcome));
  kv.Add("error", StatusText(f.error));
  if (!f.engine_error.ok()) kv.Add("engine error", StatusText(f.engine_error));
  kv.Add("kind", gc::FenceKindName(f.kind));
  if (!f.handle.empty()) kv.Add("object", f.handle);
  if (!f.source_region.empty() || !f.target_region.empty()) {
    kv.Add("regions",
           f.source_region.empty()
               ? f.target_region
               : absl::StrCat(f.source_region, " -> ", f.target_region));
  }
  if (!f.timeline.empty()) {
    kv.Add("timeline", absl::StrCat(f.timeline, " #", f.seqno));
  }
  kv.Add("created", FormatUnixNanos(f.created_unix_nanos));
  if (f.signaled_unix_nanos != 0) {
    kv.Add("signaled",
           absl::StrCat(
               FormatUnixNanos(f.signaled_unix_nanos), " (after ",
               FormatNanos(f.signaled_unix_nanos - f.created_unix_nanos), ")"));
  }
  return kv.Render();
}

void JsonObject(JsonWriter& w, const gc::ObjectInfo& o) {
  w.BeginObject();
  w.Field("handle", o.handle);
  w.FieldUint("size_bytes", o.size_bytes);
  w.FieldStrings("placements", o.placements);
  w.Field("region", o.region);
  w.Field("state", gc::ObjectStateName(o.state));
  w.Field("unknown_reason", o.unknown_reason);
  w.FieldUint("unknown_fence_id", o.unknown_fence_id);
  w.FieldUint("pin_count", o.pin_count);
  w.Field("label", o.label);
  w.Field("owner", o.owner);
  w.FieldUint("move_fence_id", o.move_fence_id);
  w.FieldUint("last_fence_id", o.last_fence_id);
  w.FieldInt("created_unix_nanos", o.created_unix_nanos);
  w.FieldBool("require_cpu_access", o.require_cpu_access);
  w.FieldBool("cpu_accessible", o.cpu_accessible);
  w.EndObject();
}

std::string HumanObject(const gc::ObjectInfo& o) {
  KeyValueBlock kv;
  kv.Add("handle", o.handle);
  kv.Add("size",
         absl::StrCat(o.size_bytes, " (", FormatSize(o.size_bytes), ")"));
  kv.Add("region", o.region);
  kv.Add("placements", absl::StrJoin(o.placements, ","));
  kv.Add("state", gc::ObjectStateName(o.state));
  if (o.state == gc::ObjectState::kUnknown) {
    kv.Add("unknown reason", o.unknown_reason);
    kv.Add("unknown fence", absl::StrCat(o.unknown_fence_id));
  }
  kv.Add("cpu accessible", o.cpu_accessible ? "yes" : "no");
  kv.Add("require cpu", o.require_cpu_access ? "yes" : "no");
  kv.Add("pin count", absl::StrCat(o.pin_count));
  kv.Add("label", o.label);
  kv.Add("owner", o.owner);
  kv.Add("move fence", absl::StrCat(o.move_fence_id));
  kv.Add("last fence", absl::StrCat(o.last_fence_id));
  kv.Add("created", FormatUnixNanos(o.created_unix_nanos));
  return kv.Render();
}

void JsonRegion(JsonWriter& w, const gc::RegionInfo& r) {
  w.BeginObject();
  w.Field("name", r.name);
  w.Field("kind", gc::RegionKindName(r.kind));
  w.FieldUint("size_bytes", r.size_bytes);
  w.FieldUint("aperture_bytes", r.aperture_bytes);
  w.FieldUint("allocated_bytes", r.allocated_bytes);
  w.FieldUint("free_bytes", r.free_bytes);
  w.FieldUint("largest_free_block_bytes", r.largest_free_block_bytes);
  w.FieldUint("aperture_allocated_bytes", r.aperture_allocated_bytes);
  w.FieldUint("min_block_bytes", r.min_block_bytes);
  w.FieldUint("objects", r.objects);
  w.FieldUint("unknown_state_objects", r.unknown_state_objects);
  w.Key("counters");
  w.BeginObject();
  w.FieldUint("evictions", r.counters.evictions);
  w.FieldUint("blits", r.counters.blits);
  w.FieldUint("blit_failures", r.counters.blit_failures);
  w.FieldUint("fallback_copies", r.counters.fallback_copies);
  w.FieldUint("fallback_clears", r.counters.fallback_clears);
  w.FieldUint("unknown_state_marks", r.counters.unknown_state_marks);
  w.FieldUint("bytes_migrated_in", r.counters.bytes_migrated_in);
  w.FieldUint("bytes_migrated_out", r.counters.bytes_migrated_out);
  w.EndObject();
  w.FieldUint("eviction_timeline_seqno", r.eviction_timeline_seqno);
  w.FieldUint("last_eviction_fence_id", r.last_eviction_fence_id);
  w.EndObject();
}

std::string RegionTable(const std::vector<gc::RegionInfo>& regions) {
  Table t({"NAME", "KIND", "SIZE", "APERTURE", "USED", "FREE", "OBJECTS",
           "EVICTIONS", "BLITS", "FAILURES", "FALLBACKS", "UNKNOWN"},
          {false, false, true, true, true, true, true, true, true, true, true,
           true});
  for (const gc::RegionInfo& r : regions) {
    t.AddRow(
        {r.name, gc::RegionKindName(r.kind), FormatSize(r.size_bytes),
         FormatSize(r.aperture_bytes), FormatSize(r.allocated_bytes),
         FormatSize(r.free_bytes), absl::StrCat(r.objects),
         absl::StrCat(r.counters.evictions), absl::StrCat(r.counters.blits),
         absl::StrCat(r.counters.blit_failures),
         absl::StrCat(r.counters.fallback_copies + r.counters.fallback_clears),
         absl::StrCat(r.unknown_state_objects)});
  }
  return t.Render();
}

std::string HumanRegion(const gc::RegionInfo& r) {
  KeyValueBlock kv;
  auto size = [](uint64_t b) {
    return absl::StrCat(FormatSize(b), " (", b, ")");
  };
  kv.Add("name", r.name);
  kv.Add("kind", gc::RegionKindName(r.kind));
  kv.Add("size", size(r.size_bytes));
  kv.Add("aperture", size(r.aperture_bytes));
  kv.Add("allocated", size(r.allocated_bytes));
  kv.Add("free", size(r.free_bytes));
  kv.Add("largest free block", size(r.largest_free_block_bytes));
  kv.Add("aperture allocated", size(r.aperture_allocated_bytes));
  kv.Add("min block", size(r.min_block_bytes));
  kv.Add("objects", absl::StrCat(r.objects));
  kv.Add("unknown-state objects", absl::StrCat(r.unknown_state_objects));
  kv.Add("evictions", absl::StrCat(r.counters.evictions));
  kv.Add("blits", absl::StrCat(r.counters.blits));
  kv.Add("blit failures", absl::StrCat(r.counters.blit_failures));
  kv.Add("fallback copies", absl::StrCat(r.counters.fallback_copies));
  kv.Add("fallback clears", absl::StrCat(r.counters.fallback_clears));
  kv.Add("unknown-state marks", absl::StrCat(r.counters.unknown_state_marks));
  kv.Add("migrated in", size(r.counters.bytes_migrated_in));
  kv.Add("migrated out", size(r.counters.bytes_migrated_out));
  kv.Add("eviction seqno", absl::StrCat(r.eviction_timeline_seqno));
  kv.Add("last eviction fence", absl::StrCat(r.last_eviction_fence_id));
  return kv.Render();
}

std::string TriggerText(const gc::FaultSpec& s) {
  if (s.always) return "always";
  if (s.probability.has_value()) {
    return absl::StrFormat("p=%g seed=%d", *s.probability, s.seed);
  }
  return absl::StrCat("next ", s.next_n);
}

void JsonFault(JsonWriter& w, const gc::FaultInfo& f) {
  w.BeginObject();
  w.FieldUint("id", f.id);
  w.Field("kind", gc::FaultKindName(f.spec.kind));
  w.Key("trigger");
  w.BeginObject();
  if (f.spec.always) {
    w.FieldBool("always", true);
  } else if (f.spec.probability.has_value()) {
    w.FieldDouble("probability", *f.spec.probability);
    w.FieldUint("seed", f.spec.seed);
  } else {
    w.FieldUint("next_n", f.spec.next_n);
  }
  w.EndObject();
  w.Field("region", f.spec.region);
  w.Field("op", f.spec.op == gc::FenceKind::kUnspecified
                    ? ""
                    : gc::FenceKindName(f.spec.op));
  w.FieldUint("latency_us", f.spec.latency_us);
  w.FieldUint("matched_count", f.matched_count);
  w.FieldUint("fired_count", f.fired_count);
  w.FieldBool("exhausted", f.exhausted);
  w.FieldInt("created_unix_nanos", f.created_unix_nanos);
  w.EndObject();
}

std::string FaultTable(const std::vector<gc::FaultInfo>& faults) {
  // matched_count is not shown: this daemon does not track it (always 0);
  // --json carries it.
  Table t({"ID", "KIND", "TRIGGER", "REGION", "OP", "LATENCY", "FIRED",
           "EXHAUSTED"},
          {true, false, false, false, false, true, true, false});
  for (const gc::FaultInfo& f : faults) {
    t.AddRow(
        {absl::StrCat(f.id), gc::FaultKindName(f.spec.kind),
         TriggerText(f.spec), f.spec.region.empty() ? "*" : f.spec.region,
         f.spec.op == gc::FenceKind::kUnspecified
             ? "*"
             : gc::FenceKindName(f.spec.op),
         f.spec.latency_us == 0 ? "-" : absl::StrCat(f.spec.latency_us, "us"),
         absl::StrCat(f.fired_count), f.exhausted ? "yes" : "no"});
  }
  return t.Render();
}

void JsonDevice(JsonWriter& w, const gc::DrmDeviceInfo& d) {
  w.BeginObject();
  w.Field("driver", d.driver);
  w.Field("bus_id", d.bus_id);
  w.Field("render_node", d.render_node);
  w.Field("primary_node", d.primary_node);
  w.FieldUint("pci_vendor_id", d.pci_vendor_id);
  w.FieldUint("pci_device_id", d.pci_device_id);
  w.EndObject();
}

std::string PciId(uint32_t id) { return absl::StrFormat("0x%04x", id); }

void JsonObjectList(JsonWriter& w, const std::vector<gc::ObjectInfo>& objects) {
  w.BeginObject();
  w.Key("objects");
  w.BeginArray();
  for (const gc::ObjectInfo& o : objects) JsonObject(w, o);
  w.EndArray();
  w.EndObject();
}

std::string ObjectTable(const std::vector<gc::ObjectInfo>& objects,
                        bool with_owner) {
  std::vector<std::string> header = {"HANDLE", "SIZE", "REGION", "STATE",
                                     "CPU",    "PINS", "FENCE",  "LABEL"};
  if (with_owner) header.push_back("OWNER");
  Table t(header, {false, true, false, false, false, true, true, false});
  for (const gc::ObjectInfo& o : objects) {
    t.AddRow({o.handle, FormatSize(o.size_bytes), o.region,
              gc::ObjectStateName(o.state), o.cpu_accessible ? "yes" : "no",
              absl::StrCat(o.pin_count), absl::StrCat(o.last_fence_id), o.label,
              o.owner});
  }
  return t.Render();
}

std::string DeviceTable(const std::vector<gc::DrmDeviceInfo>& devices) {
  Table t({"DRIVER", "BUS", "RENDER", "PRIMARY", "VENDOR", "DEVICE"});
  for (const gc::DrmDeviceInfo& d : devices) {
    t.AddRow({d.driver, d.bus_id, d.render_node.empty() ? "-" : d.render_node,
              d.primary_node.empty() ? "-" : d.primary_node,
              PciId(d.pci_vendor_id), PciId(d.pci_device_id)});
  }
  return t.Render();
}

void JsonInfo(JsonWriter& w, const gc::DaemonInfo& info,
              absl::string_view target) {
  w.BeginObject();
  w.Field("version", info.version);
  w.Field("backend", info.backend);
  w.Field("device_name", info.device_name);
  w.Key("drm_devices");
  w.BeginArray();
  for (const gc::DrmDeviceInfo& d : info.drm_devices) JsonDevice(w, d);
  w.EndArray();
  w.FieldInt("start_unix_nanos", info.start_unix_nanos);
  w.FieldInt("uptime_nanos", info.uptime_nanos);
  w.FieldBool("fault_injection_enabled", info.fault_injection_enabled);
  w.Key("caller");
  w.BeginObject();
  w.Field("name", info.caller.name);
  w.FieldUint("uid", info.caller.uid);
  w.FieldBool("is_admin", info.caller.is_admin);
  w.EndObject();
  w.Key("limits");
  w.BeginObject();
  w.FieldUint("max_chunk_bytes", info.limits.max_chunk_bytes);
  w.FieldUint("page_bytes", info.limits.page_bytes);
  w.FieldUint("max_list_page_size", info.limits.max_list_page_size);
  w.EndObject();
  w.Field("target", target);
  w.EndObject();
}

std::string HumanInfo(const gc::DaemonInfo& info, absl::string_view target) {
  KeyValueBlock kv;
  kv.Add("target", target);
  kv.Add("version", info.version);
  kv.Add("backend", info.backend);
  kv.Add("device", info.device_name);
  kv.Add("drm devices", absl::StrCat(info.drm_devices.size()));
  kv.Add("started", FormatUnixNanos(info.start_unix_nanos));
  kv.Add("uptime", FormatNanos(info.uptime_nanos));
  kv.Add("fault injection",
         info.fault_injection_enabled ? "enabled" : "disabled");
  kv.Add("caller", absl::StrCat(info.caller.name, " (uid ", info.caller.uid,
                                info.caller.is_admin ? ", admin)" : ")"));
  kv.Add("max chunk", FormatSize(info.limits.max_chunk_bytes));
  kv.Add("page size", FormatSize(info.limits.page_bytes));
  kv.Add("max list page", absl::StrCat(info.limits.max_list_page_size));
  return kv.Render();
}

void JsonStats(JsonWriter& w, const gc::DaemonStats& stats) {
  w.BeginObject();
  w.Key("rpcs");
  w.BeginArray();
  for (const gc::RpcMethodStats& m : stats.rpcs) {
    w.BeginObject();
    w.Field("method", m.method);
    w.FieldUint("calls", m.calls);
    w.FieldUint("errors", m.errors);
    w.EndObject();
  }
  w.EndArray();
  w.FieldUint("objects", stats.objects);
  w.FieldUint("unknown_state_objects", stats.unknown_state_objects);
  w.FieldUint("fences_pending", stats.fences_pending);
  w.FieldUint("fence_history_size", stats.fence_history_size);
  w.FieldUint("fences_created", stats.fences_created);
  w.FieldUint("watchers", stats.watchers);
  w.FieldBool("engine_wedged", stats.engine_wedged);
  w.Key("regions");
  w.BeginArray();
  for (const gc::RegionInfo& r : stats.regions) JsonRegion(w, r);
  w.EndArray();
  const gc::SharedBufferStats& sb = stats.shared_buffers;
  w.Key("shared_buffers");
  w.BeginObject();
  w.FieldBool("enabled", sb.enabled);
  w.FieldUint("buffers", sb.buffers);
  w.FieldUint("bytes", sb.bytes);
  w.FieldUint("connections", sb.connections);
  w.FieldUint("registrations", sb.registrations);
  w.FieldUint("rejections", sb.rejections);
  w.FieldUint("unregistrations", sb.unregistrations);
  w.FieldUint("bytes_written", sb.bytes_written);
  w.FieldUint("bytes_read", sb.bytes_read);
  w.FieldUint("max_buffers_per_principal", sb.max_buffers_per_principal);
  w.FieldUint("max_bytes_per_principal", sb.max_bytes_per_principal);
  w.FieldUint("max_total_bytes", sb.max_total_bytes);
  w.EndObject();
  w.EndObject();
}

std::string HumanStats(const gc::DaemonStats& stats) {
  KeyValueBlock kv;
  kv.Add("objects", absl::StrCat(stats.objects));
  kv.Add("unknown-state objects", absl::StrCat(stats.unknown_state_objects));
  kv.Add("fences pending", absl::StrCat(stats.fences_pending));
  kv.Add("fences created", absl::StrCat(stats.fences_created));
  kv.Add("fence history", absl::StrCat(stats.fence_history_size));
  kv.Add("watchers", absl::StrCat(stats.watchers));
  kv.Add("engine wedged", stats.engine_wedged ? "yes" : "no");
  const gc::SharedBufferStats& sb = stats.shared_buffers;
  if (!sb.enabled) {
    kv.Add("shared buffers", "off");
  } else {
    kv.Add("shared buffers",
           absl::StrCat(
               sb.buffers, " (", FormatSize(sb.bytes), ") on ", sb.connections,
               " connection(s); limits ", sb.max_buffers_per_principal, " and ",
               FormatSize(sb.max_bytes_per_principal), " per principal, ",
               FormatSize(sb.max_total_bytes), " in all"));
    kv.Add("shared-buffer copies",
           absl::StrCat(FormatSize(sb.bytes_written), " written, ",
                        FormatSize(sb.bytes_read), " read; ", sb.registrations,
                        " registered, ", sb.rejections, " refused, ",
                        sb.unregistrations, " unregistered"));
  }
  std::string out = kv.Render();
  Table rpcs({"METHOD", "CALLS", "ERRORS"}, {false, true, true});
  for (const gc::RpcMethodStats& m : stats.rpcs) {
    rpcs.AddRow({m.method, absl::StrCat(m.calls), absl::StrCat(m.errors)});
  }
  absl::StrAppend(&out, "\n", rpcs.Render(), "\n", RegionTable(stats.regions));
  return out;
}

void JsonSelfTest(JsonWriter& w, const gc::SelfTestResult& r) {
  w.BeginObject();
  w.FieldBool("passed", r.passed);
  w.FieldUint("canary_bytes_written", r.canary_bytes_written);
  w.FieldUint("objects_checked", r.objects_checked);
  w.FieldUint("violations", r.violations);
  w.FieldStrings("details", r.details);
  w.EndObject();
}

std::string HumanSelfTest(const gc::SelfTestResult& r) {
  KeyValueBlock kv;
  kv.Add("result", r.passed ? "PASSED" : "FAILED");
  kv.Add("canary bytes", absl::StrCat(r.canary_bytes_written, " (",
                                      FormatSize(r.canary_bytes_written), ")"));
  kv.Add("objects checked", absl::StrCat(r.objects_checked));
  kv.Add("violations", absl::StrCat(r.violations));
  std::string out = kv.Render();
  for (const std::string& line : r.details) {
    absl::StrAppend(&out, "  ", line, "\n");
  }
  return out;
}

void JsonEvent(JsonWriter& w, const gc::WatchEvent& e) {
  w.BeginObject();
  w.FieldUint("event_seqno", e.event_seqno);
  w.Field("kind", gc::EventKindName(e.kind));
  w.Field("handle", e.handle);
  w.Field("region", e.region);
  w.FieldInt("time_unix_nanos", e.time_unix_nanos);
  w.FieldUint("dropped_events", e.dropped_events);
  w.Key("fence");
  if (e.fence.has_value()) {
    JsonFence(w, *e.fence);
  } else {
    w.Null();
  }
  w.EndObject();
}

std::string HumanEvent(const gc::WatchEvent& e) {
  std::string line =
      absl::StrCat("event ", e.event_seqno, "  ", gc::EventKindName(e.kind));
  if (e.kind == gc::EventKind::kDropped) {
    absl::StrAppend(&line, "  ", e.dropped_events, " events lost");
    return line + "\n";
  }
  if (!e.handle.empty()) absl::StrAppend(&line, "  ", e.handle);
  if (!e.region.empty()) absl::StrAppend(&line, "  region ", e.region);
  if (e.fence.has_value()) {
    const gc::FenceStatus& f = *e.fence;
    absl::StrAppend(&line, "  fence ", f.fence_id, " ",
                    gc::FenceKindName(f.kind), " ",
                    f.signaled() ? gc::FenceOutcomeName(f.outcome)
                                 : gc::FenceStateName(f.state));
    if (!f.error.ok()) absl::StrAppend(&line, "  error ", StatusText(f.error));
    if (!f.engine_error.ok()) {
      absl::StrAppend(&line, "  engine ", StatusText(f.engine_error));
    }
  }
  return line + "\n";
}

}  // namespace gpumig::cli
