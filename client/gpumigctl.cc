// gpumigctl: the command-line client of gpumigd. One subcommand per RPC;
// `gpumigctl help` lists them, `gpumigctl SUBCMD --help` describes one.
//
// Output: human-readable text and aligned tables by default; with --json, one
// JSON object per result on stdout (stable keys; `fence watch` prints one per
// event). Errors go to stderr as `gpumigctl: <command>: <CODE>: <message>`
// and the exit code tells the error kind (cli::ExitCodeHelp()).

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cli_args.h"
#include "client/cli_format.h"
#include "client/gpumig_client.h"

namespace gpumig::cli {
namespace {

namespace gc = ::gpumig::client;

// ---------------------------------------------------------------------------
// Command table.

struct Ctx;

struct Command {
  // "create", "exec fill", ...
  std::string name;
  // Arguments after the name, for the usage line, e.g. "SIZE [flags]".
  std::string synopsis;
  // One line for the command list.
  std::string summary;
  // Longer help (may be empty); printed under the usage line.
  std::string details;
  std::vector<FlagSpec> flags;
  size_t min_args = 0;
  size_t max_args = 0;
  std::function<int(Ctx&)> run;
};

const std::vector<FlagSpec>& GlobalFlags() {
  static const auto* flags = new std::vector<FlagSpec>{
      {"socket", "PATH",
       "daemon unix socket (default: $GPUMIG_SOCKET or "
       "/run/gpumig/gpumig.sock)"},
      {"target", "HOST:PORT", "connect over TCP with TLS instead"},
      {"tls-ca", "FILE", "TLS root CA (PEM; default: system roots)"},
      {"tls-cert", "FILE", "TLS client certificate (PEM)"},
      {"tls-key", "FILE", "TLS client key (PEM)"},
      {"tls-server-name", "NAME", "expect this name in the server certificate"},
      {"json", "", "machine output: one JSON object per result"},
      {"timeout", "DUR", "RPC deadline (default 30s; e.g. 500ms, 2m, inf)"},
      {"no-shm", "",
       "never use shared buffers: write/read of >= 256 KiB on a local "
       "socket otherwise move bytes through a registered memfd"},
      {"help", "", "show help", 'h'},
  };
  return *flags;
}

// Per-invocation state.
struct Ctx {
  const Command* command = nullptr;
  ParsedArgs global;  // global flags given before the command
  ParsedArgs args;    // the command's own flags, positionals, later globals
  bool json = false;
  gc::ConnectOptions connect;
  gc::CallOptions call;
  bool timeout_given = false;
  std::unique_ptr<gc::Client> client_storage;

  const std::vector<std::string>& pos() const { return args.positional(); }

  // A global flag's value: after the command wins over before it.
  std::optional<std::string> Global(absl::string_view name) const {
    std::optional<std::string> v = args.Get(name);
    return v.has_value() ? v : global.Get(name);
  }

  // Prints `gpumigctl: <command>: <CODE>: <message>` (plus a hint for
  // UNAVAILABLE) and returns the exit code for the status.
  int Error(const absl::Status& status) const {
    std::cerr << "gpumigctl: " << command->name << ": "
              << absl::StatusCodeToString(status.code()) << ": "
              << status.message() << "\n";
    if (status.code() == absl::StatusCode::kUnavailable) {
      if (!connect.tcp_target.empty()) {
        std::cerr << "gpumigctl: is gpumigd running? target "
                  << connect.tcp_target << "\n";
      } else {
        std::cerr << "gpumigctl: is gpumigd running? socket "
                  << (connect.unix_socket.empty() ? gc::DefaultSocketPath()
                                                  : connect.unix_socket)
                  << "\n";
      }
    }
    return ExitCodeForStatus(status);
  }

  // A usage error: the message and the command's usage on stderr; exit 2.
  int Usage(absl::string_view message) const;

  // The connected client (created on first use).
  absl::StatusOr<gc::Client*> Client() {
    if (client_storage == nullptr) {
      absl::StatusOr<std::unique_ptr<gc::Client>> c =
          gc::Client::Connect(connect);
      if (!c.ok()) return c.status();
      client_storage = *std::move(c);
    }
    return client_storage.get();
  }

  // CallOptions with a longer default deadline (unless --timeout was given).
  gc::CallOptions CallWithDefault(absl::Duration default_timeout) const {
    gc::CallOptions c = call;
    if (!timeout_given) c.timeout = default_timeout;
    return c;
  }
};

// Writes to stdout and flushes (so a pipe sees each result at once).
// Returns false once stdout has failed (closed pipe, full disk); main reports
// that at the end.
bool PrintOut(absl::string_view text) {
  std::cout << text;
  std::cout.flush();
  return static_cast<bool>(std::cout);
}

void PrintJson(const JsonWriter& w) { PrintOut(absl::StrCat(w.str(), "\n")); }

// A command's result: one JSON value with --json, else `human()`'s text.
int PrintResult(const Ctx& ctx, absl::FunctionRef<void(JsonWriter&)> json,
                absl::FunctionRef<std::string()> human) {
  if (ctx.json) {
    JsonWriter w;
    json(w);
    PrintJson(w);
  } else {
    PrintOut(human());
  }
  return kExitOk;
}

// Parses the value flag `name` with ParseSize (absent: `fallback`).
absl::StatusOr<uint64_t> SizeFlag(const Ctx& ctx, absl::string_view name,
                                  uint64_t fallback) {
  std::optional<std::string> v = ctx.args.Get(name);
  if (!v.has_value()) return fallback;
  absl::StatusOr<uint64_t> size = ParseSize(*v);
  if (!size.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": ", size.status().message()));
  }
  return size;
}

absl::StatusOr<uint64_t> FenceIdArg(absl::string_view text) {
  absl::StatusOr<uint64_t> id = ParseUint(text);
  if (!id.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad fence id: ", id.status().message()));
  }
  return id;
}

// ---------------------------------------------------------------------------
// Rendering of results.

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
  w.EndObject();
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

// Exit code for a fence a command waited for: 0 for BLIT_OK and fallbacks,
// 7 for UNKNOWN_STATE, 12 for FAILED; prints a line to stderr for the last
// two.
int FenceExit(const Ctx& ctx, const gc::FenceStatus& f) {
  if (f.outcome == gc::FenceOutcome::kUnknownState) {
    std::cerr << "gpumigctl: " << ctx.command->name << ": fence " << f.fence_id
              << " ended UNKNOWN_STATE (object " << f.handle
              << " is in unknown state: destroy it): " << StatusText(f.error)
              << "\n";
    return kExitDataLoss;
  }
  if (f.outcome == gc::FenceOutcome::kFailed) {
    std::cerr << "gpumigctl: " << ctx.command->name << ": fence " << f.fence_id
              << " ended FAILED (nothing changed): " << StatusText(f.error)
              << "\n";
    return kExitOperationFailed;
  }
  return kExitOk;
}

// Prints a submission (fence id, and the fence if the call waited).
int PrintSubmit(const Ctx& ctx, const gc::SubmitResult& r,
                const std::function<void(JsonWriter&)>& extra_json,
                absl::string_view human_prefix) {
  if (ctx.json) {
    JsonWriter w;
    w.BeginObject();
    extra_json(w);
    w.FieldUint("fence_id", r.fence_id);
    w.Key("fence");
    if (r.fence.has_value()) {
      JsonFence(w, *r.fence);
    } else {
      w.Null();
    }
    w.EndObject();
    PrintJson(w);
  } else if (r.fence.has_value()) {
    PrintOut(HumanFence(*r.fence));
  } else {
    // Not waited for: it may well have signalled already (small commands
    // often have), so say where its outcome is rather than guess.
    PrintOut(absl::StrCat(human_prefix, "fence ", r.fence_id,
                          " submitted; its outcome: `gpumigctl fence wait ",
                          r.fence_id, "`\n"));
  }
  return r.fence.has_value() ? FenceExit(ctx, *r.fence) : kExitOk;
}

// ---------------------------------------------------------------------------
// Commands.

#define CLIENT_OR_RETURN(ctx, var)                           \
  absl::StatusOr<gc::Client*> var##_or = (ctx).Client();     \
  if (!var##_or.ok()) return (ctx).Error(var##_or.status()); \
  gc::Client* var = *var##_or

int RunPing(Ctx& ctx) {
  CLIENT_OR_RETURN(ctx, client);
  absl::Time start = absl::Now();
  absl::Status s = client->Ping(ctx.call);
  absl::Duration rtt = absl::Now() - start;
  if (!s.ok()) return ctx.Error(s);
  return PrintResult(
      ctx,
      [&](JsonWriter& w) {
        w.BeginObject();
        w.FieldBool("ok", true);
        w.Field("target", client->target());
        w.FieldInt("rtt_nanos", absl::ToInt64Nanoseconds(rtt));
        w.EndObject();
      },
      [&] {
        return absl::StrCat("pong from ", client->target(), " in ",
                            absl::FormatDuration(rtt), "\n");
      });
}

int RunInfo(Ctx& ctx) {
  CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::DaemonInfo> info = client->GetInfo(ctx.call);
  if (!info.ok()) return ctx.Error(info.status());
  if (ctx.json) {
    JsonWriter w;
    w.BeginObject();
    w.Field("version", info->version);
    w.Field("backend", info->backend);
    w.Field("device_name", info->device_name);
    w.Key("drm_devices");
    w.BeginArray();
    for (const gc::DrmDeviceInfo& d : info->drm_devices) JsonDevice(w, d);
    w.EndArray();
    w.FieldInt("start_unix_nanos", info->start_unix_nanos);
    w.FieldInt("uptime_nanos", info->uptime_nanos);
    w.FieldBool("fault_injection_enabled", info->fault_injection_enabled);
    w.Key("caller");
    w.BeginObject();
    w.Field("name", info->caller.name);
    w.FieldUint("uid", info->caller.uid);
    w.FieldBool("is_admin", info->caller.is_admin);
    w.EndObject();
    w.Key("limits");
    w.BeginObject();
    w.FieldUint("max_chunk_bytes", info->limits.max_chunk_bytes);
    w.FieldUint("page_bytes", info->limits.page_bytes);
    w.FieldUint("max_list_page_size", info->limits.max_list_page_size);
    w.EndObject();
    w.Field("target", client->target());
    w.EndObject();
    PrintJson(w);
    return kExitOk;
  }
  KeyValueBlock kv;
  kv.Add("target", client->target());
  kv.Add("version", info->version);
  kv.Add("backend", info->backend);
  kv.Add("device", info->device_name);
  kv.Add("drm devices", absl::StrCat(info->drm_devices.size()));
  kv.Add("started", FormatUnixNanos(info->start_unix_nanos));
  kv.Add("uptime", FormatNanos(info->uptime_nanos));
  kv.Add("fault injection",
         info->fault_injection_enabled ? "enabled" : "disabled");
  kv.Add("caller", absl::StrCat(info->caller.name, " (uid ", info->caller.uid,
                                info->caller.is_admin ? ", admin)" : ")"));
  kv.Add("max chunk", FormatSize(info->limits.max_chunk_bytes));
  kv.Add("page size", FormatSize(info->limits.page_bytes));
  kv.Add("max list page", absl::StrCat(info->limits.max_list_page_size));
  PrintOut(kv.Render());
  return kExitOk;
}

int RunDevices(Ctx& ctx) {
  CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::DaemonInfo> info = client->GetInfo(ctx.call);
  if (!info.ok()) return ctx.Error(info.status());
  if (ctx.json) {
    JsonWriter w;
    w.BeginObject();
    w.Key("devices");
    w.BeginArray();
    for (const gc::DrmDeviceInfo& d : info->drm_devices) JsonDevice(w, d);
    w.EndArray();
    w.EndObject();
    PrintJson(w);
    return kExitOk;
  }
  if (info->drm_devices.empty()) {
    PrintOut("no DRM devices\n");
    return kExitOk;
  }
  Table t({"DRIVER", "BUS", "RENDER", "PRIMARY", "VENDOR", "DEVICE"});
  for (const gc::DrmDeviceInfo& d : info->drm_devices) {
    t.AddRow({d.driver, d.bus_id, d.render_node.empty() ? "-" : d.render_node,
              d.primary_node.empty() ? "-" : d.primary_node,
              PciId(d.pci_vendor_id), PciId(d.pci_device_id)});
  }
  PrintOut(t.Render());
  return kExitOk;
}

int RunStats(Ctx& ctx) {
  CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::DaemonStats> stats = client->GetStats(ctx.call);
  if (!stats.ok()) return ctx.Error(stats.status());
  if (ctx.json) {
    JsonWriter w;
    w.BeginObject();
    w.Key("rpcs");
    w.BeginArray();
    for (const gc::RpcMethodStats& m : stats->rpcs) {
      w.BeginObject();
      w.Field("method", m.method);
      w.FieldUint("calls", m.calls);
      w.FieldUint("errors", m.errors);
      w.EndObject();
    }
    w.EndArray();
    w.FieldUint("objects", stats->objects);
    w.FieldUint("unknown_state_objects", stats->unknown_state_objects);
    w.FieldUint("fences_pending", stats->fences_pending);
    w.FieldUint("fence_history_size", stats->fence_history_size);
    w.FieldUint("fences_created", stats->fences_created);
    w.FieldUint("watchers", stats->watchers);
    w.FieldBool("engine_wedged", stats->engine_wedged);
    w.Key("regions");
    w.BeginArray();
    for (const gc::RegionInfo& r : stats->regions) JsonRegion(w, r);
    w.EndArray();
    const gc::SharedBufferStats& sb = stats->shared_buffers;
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
    PrintJson(w);
    return kExitOk;
  }
  KeyValueBlock kv;
  kv.Add("objects", absl::StrCat(stats->objects));
  kv.Add("unknown-state objects", absl::StrCat(stats->unknown_state_objects));
  kv.Add("fences pending", absl::StrCat(stats->fences_pending));
  kv.Add("fences created", absl::StrCat(stats->fences_created));
  kv.Add("fence history", absl::StrCat(stats->fence_history_size));
  kv.Add("watchers", absl::StrCat(stats->watchers));
  kv.Add("engine wedged", stats->engine_wedged ? "yes" : "no");
  const gc::SharedBufferStats& sb = stats->shared_buffers;
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
  for (const gc::RpcMethodStats& m : stats->rpcs) {
    rpcs.AddRow({m.method, absl::StrCat(m.calls), absl::StrCat(m.errors)});
  }
  absl::StrAppend(&out, "\n", rpcs.Render(), "\n", RegionTable(stats->regions));
  PrintOut(out);
  return kExitOk;
}

int RunSelfTest(Ctx& ctx) {
  absl::StatusOr<uint64_t> bytes = SizeFlag(ctx, "bytes-per-region", 0);
  if (!bytes.ok()) return ctx.Error(bytes.status());
  CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::SelfTestResult> r =
      client->SelfTest(*bytes, ctx.args.Has("with-faults"),
                       ctx.CallWithDefault(absl::Minutes(5)));
  if (!r.ok()) return ctx.Error(r.status());
  if (ctx.json) {
    JsonWriter w;
    w.BeginObject();
    w.FieldBool("passed", r->passed);
    w.FieldUint("canary_bytes_written", r->canary_bytes_written);
    w.FieldUint("objects_checked", r->objects_checked);
    w.FieldUint("violations", r->violations);
    w.FieldStrings("details", r->details);
    w.EndObject();
    PrintJson(w);
  } else {
    KeyValueBlock kv;
    kv.Add("result", r->passed ? "PASSED" : "FAILED");
    kv.Add("canary bytes",
           absl::StrCat(r->canary_bytes_written, " (",
                        FormatSize(r->canary_bytes_written), ")"));
    kv.Add("objects checked", absl::StrCat(r->objects_checked));
    kv.Add("violations", absl::StrCat(r->violations));
    std::string out = kv.Render();
    for (const std::string& line : r->details) {
      absl::StrAppend(&out, "  ", line, "\n");
    }
    PrintOut(out);
  }
  if (!r->passed) {
    std::cerr << "gpumigctl: selftest: " << r->violations
              << " violation(s) found\n";
    return kExitCheckFailed;
  }
  return kExitOk;
}

int RunCreate(Ctx& ctx) {
  absl::StatusOr<uint64_t> size = ParseSize(ctx.pos()[0]);
  if (!size.ok()) return ctx.Error(size.status());
  gc::CreateObjectOptions options;
  options.size_bytes = *size;
  if (std::optional<std::string> p = ctx.args.Get("placements")) {
    options.placements = SplitList(*p);
    if (options.placements.empty()) {
      return ctx.Error(
          absl::InvalidArgumentError("--placements: no region named"));
    }
  }
  options.require_cpu_access = ctx.args.Has("cpu");
  options.pin = ctx.args.Has("pin");
  options.label = ctx.args.GetOr("label", "");
  CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::CreateObjectResult> r =
      client->CreateObject(options, ctx.call);
  if (!r.ok()) return ctx.Error(r.status());
  if (ctx.json) {
    JsonWriter w;
    w.BeginObject();
    w.Key("object");
    JsonObject(w, r->object);
    w.FieldUint("fence_id", r->fence_id);
    w.EndObject();
    PrintJson(w);
  } else if (ctx.args.Has("quiet")) {
    PrintOut(absl::StrCat(r->object.handle, "\n"));
  } else {
    PrintOut(absl::StrCat(
        "created ", r->object.handle, ": ", FormatSize(r->object.size_bytes),
        " in ", r->object.region, ", clear fence ", r->fence_id, "\n"));
  }
  return kExitOk;
}

int RunDestroy(Ctx& ctx) {
  CLIENT_OR_RETURN(ctx, client);
  absl::Status s = client->DestroyObject(ctx.pos()[0], ctx.call);
  if (!s.ok()) return ctx.Error(s);
  return PrintResult(
      ctx,
      [&](JsonWriter& w) {
        w.BeginObject();
        w.Field("handle", ctx.pos()[0]);
        w.FieldBool("destroyed", true);
        w.EndObject();
      },
      [&] { return absl::StrCat("destroyed ", ctx.pos()[0], "\n"); });
}

int RunGet(Ctx& ctx) {
  CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::ObjectInfo> o = client->GetObject(ctx.pos()[0], ctx.call);
  if (!o.ok()) return ctx.Error(o.status());
  return PrintResult(
      ctx, [&](JsonWriter& w) { JsonObject(w, *o); },
      [&] { return HumanObject(*o); });
}

int RunList(Ctx& ctx) {
  CLIENT_OR_RETURN(ctx, client);
  const bool all = ctx.args.Has("all");
  absl::StatusOr<std::vector<gc::ObjectInfo>> objects =
      client->ListObjects(all, ctx.call);
  if (!objects.ok()) return ctx.Error(objects.status());
  if (ctx.json) {
    JsonWriter w;
    w.BeginObject();
    w.Key("objects");
    w.BeginArray();
    for (const gc::ObjectInfo& o : *objects) JsonObject(w, o);
    w.EndArray();
    w.EndObject();
    PrintJson(w);
    return kExitOk;
  }
  std::vector<std::string> header = {"HANDLE", "SIZE", "REGION", "STATE",
                                     "CPU",    "PINS", "FENCE",  "LABEL"};
  if (all) header.push_back("OWNER");
  Table t(header, {false, true, false, false, false, true, true, false});
  for (const gc::ObjectInfo& o : *objects) {
    t.AddRow({o.handle, FormatSize(o.size_bytes), o.region,
              gc::ObjectStateName(o.state), o.cpu_accessible ? "yes" : "no",
              absl::StrCat(o.pin_count), absl::StrCat(o.last_fence_id), o.label,
              o.owner});
  }
  PrintOut(t.Render());
  return kExitOk;
}

int RunWrite(Ctx& ctx) {
  absl::StatusOr<uint64_t> offset = SizeFlag(ctx, "offset", 0);
  if (!offset.ok()) return ctx.Error(offset.status());
  const std::string& handle = ctx.pos()[0];
  std::string path = ctx.pos().size() > 1 ? ctx.pos()[1] : "-";
  int fd = STDIN_FILENO;
  if (path != "-") {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return ctx.Error(absl::ErrnoToStatus(errno, absl::StrCat(path)));
    }
  }
  CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<uint64_t> n =
      client->WriteFromFd(handle, fd, *offset, ctx.call);
  if (fd != STDIN_FILENO) ::close(fd);
  if (!n.ok()) return ctx.Error(n.status());
  return PrintResult(
      ctx,
      [&](JsonWriter& w) {
        w.BeginObject();
        w.Field("handle", handle);
        w.FieldUint("offset", *offset);
        w.FieldUint("bytes_written", *n);
        w.EndObject();
      },
      [&] {
        return absl::StrCat("wrote ", *n, " bytes (", FormatSize(*n), ") to ",
                            handle, " at offset ", *offset, "\n");
      });
}

int RunRead(Ctx& ctx) {
  absl::StatusOr<uint64_t> offset = SizeFlag(ctx, "offset", 0);
  if (!offset.ok()) return ctx.Error(offset.status());
  absl::StatusOr<uint64_t> length = SizeFlag(ctx, "length", 0);
  if (!length.ok()) return ctx.Error(length.status());
  const std::string& handle = ctx.pos()[0];
  std::string path = ctx.pos().size() > 1 ? ctx.pos()[1] : "-";
  const bool to_stdout = path == "-";
  CLIENT_OR_RETURN(ctx, client);
  int fd = STDOUT_FILENO;
  if (!to_stdout) {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      return ctx.Error(absl::ErrnoToStatus(errno, absl::StrCat(path)));
    }
  }
  absl::StatusOr<uint64_t> n =
      client->ReadToFd(handle, fd, *offset, *length, ctx.call);
  if (!to_stdout) {
    struct stat st;
    const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (::close(fd) != 0 && n.ok()) {
      n = absl::ErrnoToStatus(errno, absl::StrCat("closing ", path));
    }
    // Leave no truncated or partial file behind a failed read.
    if (!n.ok() && regular) ::unlink(path.c_str());
  }
  if (!n.ok()) return ctx.Error(n.status());
  if (to_stdout) return kExitOk;  // stdout carries the data
  return PrintResult(
      ctx,
      [&](JsonWriter& w) {
        w.BeginObject();
        w.Field("handle", handle);
        w.FieldUint("offset", *offset);
        w.FieldUint("bytes_read", *n);
        w.Field("file", path);
        w.EndObject();
      },
      [&] {
        return absl::StrCat("read ", *n, " bytes (", FormatSize(*n), ") from ",
                            handle, " at offset ", *offset, " into ", path,
                            "\n");
      });
}

int RunMigrate(Ctx& ctx) {
  CLIENT_OR_RETURN(ctx, client);
  const std::string& handle = ctx.pos()[0];
  const std::string& region = ctx.pos()[1];
  absl::StatusOr<gc::SubmitResult> r =
      client->Migrate(handle, region, ctx.args.Has("wait"), ctx.call);
  if (!r.ok()) return ctx.Error(r.status());
  return PrintSubmit(
      ctx, *r,
      [&](JsonWriter& w) {
        w.Field("handle", handle);
        w.Field("region", region);
      },
      absl::StrCat(handle, " -> ", region, ": "));
}

int RunPinUnpin(Ctx& ctx, bool pin) {
  CLIENT_OR_RETURN(ctx, client);
  const std::string& handle = ctx.pos()[0];
  absl::StatusOr<uint32_t> count =
      pin ? client->Pin(handle, ctx.call) : client->Unpin(handle, ctx.call);
  if (!count.ok()) return ctx.Error(count.status());
  return PrintResult(
      ctx,
      [&](JsonWriter& w) {
        w.BeginObject();
        w.Field("handle", handle);
        w.FieldUint("pin_count", *count);
        w.EndObject();
      },
      [&] { return absl::StrCat(handle, ": pin count ", *count, "\n"); });
}

int RunExecFill(Ctx& ctx) {
  gc::FillOptions options;
  options.handle = ctx.pos()[0];
  std::optional<std::string> value = ctx.args.Get("value");
  if (!value.has_value()) return ctx.Usage("--value is required");
  absl::StatusOr<uint64_t> v = ParseUint(*value, 255);
  if (!v.ok()) {
    return ctx.Error(absl::InvalidArgumentError(
        absl::StrCat("--value: ", v.status().message())));
  }
  options.value = static_cast<uint32_t>(*v);
  absl::StatusOr<uint64_t> offset = SizeFlag(ctx, "offset", 0);
  if (!offset.ok()) return ctx.Error(offset.status());
  absl::StatusOr<uint64_t> length = SizeFlag(ctx, "length", 0);
  if (!length.ok()) return ctx.Error(length.status());
  options.offset = *offset;
  options.length = *length;
  options.wait = ctx.args.Has("wait");
  CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::SubmitResult> r = client->ExecFill(options, ctx.call);
  if (!r.ok()) return ctx.Error(r.status());
  return PrintSubmit(
      ctx, *r, [&](JsonWriter& w) { w.Field("handle", options.handle); },
      absl::StrCat("fill ", options.handle, ": "));
}

int RunExecCopy(Ctx& ctx) {
  gc::CopyOptions options;
  options.src_handle = ctx.pos()[0];
  options.dst_handle = ctx.pos()[1];
  absl::StatusOr<uint64_t> src_offset = SizeFlag(ctx, "src-offset", 0);
  if (!src_offset.ok()) return ctx.Error(src_offset.status());
  absl::StatusOr<uint64_t> dst_offset = SizeFlag(ctx, "dst-offset", 0);
  if (!dst_offset.ok()) return ctx.Error(dst_offset.status());
  absl::StatusOr<uint64_t> length = SizeFlag(ctx, "length", 0);
  if (!length.ok()) return ctx.Error(length.status());
  options.src_offset = *src_offset;
  options.dst_offset = *dst_offset;
  options.length = *length;
  options.wait = ctx.args.Has("wait");
  CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::SubmitResult> r = client->ExecCopy(options, ctx.call);
  if (!r.ok()) return ctx.Error(r.status());
  return PrintSubmit(
      ctx, *r,
      [&](JsonWriter& w) {
        w.Field("src_handle", options.src_handle);
        w.Field("dst_handle", options.dst_handle);
      },
      absl::StrCat("copy ", options.src_handle, " -> ", options.dst_handle,
                   ": "));
}

int RunExecChecksum(Ctx& ctx) {
  gc::ChecksumOptions options;
  options.handle = ctx.pos()[0];
  absl::StatusOr<uint64_t> offset = SizeFlag(ctx, "offset", 0);
  if (!offset.ok()) return ctx.Error(offset.status());
  absl::StatusOr<uint64_t> length = SizeFlag(ctx, "length", 0);
  if (!length.ok()) return ctx.Error(length.status());
  options.offset = *offset;
  options.length = *length;
  CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::ChecksumResult> r =
      client->ExecChecksum(options, ctx.call);
  if (!r.ok()) return ctx.Error(r.status());
  if (ctx.json) {
    JsonWriter w;
    w.BeginObject();
    w.Field("handle", options.handle);
    w.FieldUint("offset", options.offset);
    w.FieldUint("length", options.length);
    w.Key("checksum");
    if (r->checksum.has_value()) {
      w.Uint(*r->checksum);
    } else {
      w.Null();
    }
    w.Field("checksum_hex", r->checksum.has_value()
                                ? absl::StrFormat("0x%016x", *r->checksum)
                                : "");
    w.FieldUint("fence_id", r->fence_id);
    w.Key("fence");
    JsonFence(w, r->fence);
    w.EndObject();
    PrintJson(w);
  } else if (r->checksum.has_value()) {
    PrintOut(absl::StrFormat("0x%016x  %s\n", *r->checksum, options.handle));
  } else {
    PrintOut(HumanFence(r->fence));
  }
  if (!r->checksum.has_value()) {
    int code = FenceExit(ctx, r->fence);
    if (code == kExitOk) {
      std::cerr << "gpumigctl: exec checksum: no checksum (outcome "
                << gc::FenceOutcomeName(r->fence.outcome) << ")\n";
      code = kExitOperationFailed;
    }
    return code;
  }
  return kExitOk;
}

int RunFenceGet(Ctx& ctx) {
  absl::StatusOr<uint64_t> id = FenceIdArg(ctx.pos()[0]);
  if (!id.ok()) return ctx.Error(id.status());
  CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::FenceStatus> f = client->GetFence(*id, ctx.call);
  if (!f.ok()) return ctx.Error(f.status());
  return PrintResult(
      ctx, [&](JsonWriter& w) { JsonFence(w, *f); },
      [&] { return HumanFence(*f); });
}

int RunFenceWait(Ctx& ctx) {
  absl::StatusOr<uint64_t> id = FenceIdArg(ctx.pos()[0]);
  if (!id.ok()) return ctx.Error(id.status());
  absl::Duration timeout = absl::Seconds(10);
  if (std::optional<std::string> t = ctx.args.Get("timeout")) {
    absl::StatusOr<absl::Duration> d = ParseDurationFlag(*t);
    if (!d.ok()) return ctx.Error(d.status());
    timeout = *d;
  }
  CLIENT_OR_RETURN(ctx, client);
  // The RPC deadline follows the wait's own timeout unless --timeout was
  // given before the command (ctx.call then carries it).
  absl::StatusOr<gc::FenceStatus> f = client->WaitFence(*id, timeout, ctx.call);
  if (!f.ok()) return ctx.Error(f.status());
  if (ctx.json) {
    JsonWriter w;
    JsonFence(w, *f);
    PrintJson(w);
  } else {
    PrintOut(HumanFence(*f));
  }
  return FenceExit(ctx, *f);
}

// Runs `fn` with SIGINT and SIGTERM turned into a Cancel() of `canceller`.
// The signals are blocked before the client's threads exist (the caller
// creates the client afterwards), and a helper thread sigwait()s for them.
class SignalCanceller {
 public:
  explicit SignalCanceller(gc::WatchCanceller canceller)
      : canceller_(std::move(canceller)) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    thread_ = std::thread([this] {
      int sig = 0;
      while (sigwait(&set_, &sig) == 0) {
        absl::MutexLock lock(&mu_);
        if (done_) return;
        interrupted_ = true;
        canceller_.Cancel();
      }
    });
  }
  ~SignalCanceller() {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  bool interrupted() {
    absl::MutexLock lock(&mu_);
    return interrupted_;
  }

 private:
  gc::WatchCanceller canceller_;
  sigset_t set_;
  sigset_t old_;
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool interrupted_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

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

int RunFenceWatch(Ctx& ctx) {
  gc::WatchOptions options;
  options.handle = ctx.args.GetOr("handle", "");
  options.all_principals = ctx.args.Has("all");
  if (std::optional<std::string> kinds = ctx.args.Get("kinds")) {
    for (const std::string& name : SplitList(*kinds)) {
      absl::StatusOr<gc::EventKind> kind = gc::ParseEventKind(name);
      if (!kind.ok()) return ctx.Error(kind.status());
      options.kinds.push_back(*kind);
    }
  }
  uint64_t count = 0;  // 0: unlimited
  if (std::optional<std::string> c = ctx.args.Get("count")) {
    absl::StatusOr<uint64_t> n = ParseUint(*c);
    if (!n.ok()) {
      return ctx.Error(absl::InvalidArgumentError(
          absl::StrCat("--count: ", n.status().message())));
    }
    count = *n;
  }
  gc::CallOptions call;
  call.timeout = absl::InfiniteDuration();
  if (std::optional<std::string> t = ctx.args.Get("timeout")) {
    absl::StatusOr<absl::Duration> d = ParseDurationFlag(*t);
    if (!d.ok()) return ctx.Error(d.status());
    call.timeout = *d == absl::ZeroDuration() ? absl::InfiniteDuration() : *d;
  } else if (ctx.global.Given("timeout")) {
    call = ctx.call;
  }
  const bool bounded = call.timeout != absl::InfiniteDuration();

  gc::WatchCanceller canceller;
  SignalCanceller signals(canceller);  // before the client's threads start
  CLIENT_OR_RETURN(ctx, client);
  uint64_t seen = 0;
  absl::Status s = client->Watch(
      options,
      [&](const gc::WatchEvent& e) {
        if (ctx.json) {
          JsonWriter w;
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
          PrintJson(w);
        } else {
          PrintOut(HumanEvent(e));
        }
        ++seen;
        // Stop once nobody reads our output (`... | head -n 3`).
        return std::cout && (count == 0 || seen < count);
      },
      &canceller, call);
  // The watch's own deadline ending it is a normal end.
  if (s.code() == absl::StatusCode::kDeadlineExceeded && bounded) {
    s = absl::OkStatus();
  }
  if (!s.ok()) return ctx.Error(s);
  return kExitOk;
}

int RunRegions(Ctx& ctx) {
  CLIENT_OR_RETURN(ctx, client);
  if (!ctx.pos().empty()) {
    absl::StatusOr<gc::RegionInfo> r =
        client->GetRegion(ctx.pos()[0], ctx.call);
    if (!r.ok()) return ctx.Error(r.status());
    if (ctx.json) {
      JsonWriter w;
      JsonRegion(w, *r);
      PrintJson(w);
    } else {
      PrintOut(HumanRegion(*r));
    }
    return kExitOk;
  }
  absl::StatusOr<std::vector<gc::RegionInfo>> regions =
      client->ListRegions(ctx.call);
  if (!regions.ok()) return ctx.Error(regions.status());
  return PrintResult(
      ctx,
      [&](JsonWriter& w) {
        w.BeginObject();
        w.Key("regions");
        w.BeginArray();
        for (const gc::RegionInfo& r : *regions) JsonRegion(w, r);
        w.EndArray();
        w.EndObject();
      },
      [&] { return RegionTable(*regions); });
}

int RunEvict(Ctx& ctx) {
  CLIENT_OR_RETURN(ctx, client);
  const std::string& region = ctx.pos()[0];
  absl::StatusOr<gc::EvictResult> r =
      client->EvictRegion(region, ctx.args.Has("wait"), ctx.call);
  if (!r.ok()) return ctx.Error(r.status());
  if (ctx.json) {
    JsonWriter w;
    w.BeginObject();
    w.Field("region", region);
    w.FieldUint("objects_evicted", r->objects_evicted);
    w.FieldUint("bytes_evicted", r->bytes_evicted);
    w.FieldUint("objects_skipped", r->objects_skipped);
    w.FieldUint("last_fence_id", r->last_fence_id);
    w.EndObject();
    PrintJson(w);
  } else {
    PrintOut(absl::StrCat(region, ": evicted ", r->objects_evicted,
                          " object(s), ", FormatSize(r->bytes_evicted),
                          "; skipped ", r->objects_skipped, "; last fence ",
                          r->last_fence_id, "\n"));
  }
  return kExitOk;
}

int RunFaultInject(Ctx& ctx) {
  gc::FaultSpec spec;
  absl::StatusOr<gc::FaultKind> kind = gc::ParseFaultKind(ctx.pos()[0]);
  if (!kind.ok()) return ctx.Error(kind.status());
  spec.kind = *kind;
  const int triggers = (ctx.args.Given("next") ? 1 : 0) +
                       (ctx.args.Given("probability") ? 1 : 0) +
                       (ctx.args.Has("always") ? 1 : 0);
  if (triggers != 1) {
    return ctx.Usage(
        "give exactly one trigger: --next N, --probability P or --always");
  }
  if (ctx.args.Given("seed") && !ctx.args.Given("probability")) {
    return ctx.Usage("--seed goes with --probability");
  }
  if (std::optional<std::string> n = ctx.args.Get("next")) {
    absl::StatusOr<uint64_t> v = ParseUint(*n, UINT32_MAX);
    if (!v.ok()) {
      return ctx.Error(absl::InvalidArgumentError(
          absl::StrCat("--next: ", v.status().message())));
    }
    spec.next_n = static_cast<uint32_t>(*v);
  } else if (std::optional<std::string> p = ctx.args.Get("probability")) {
    absl::StatusOr<double> v = ParseProbability(*p);
    if (!v.ok()) return ctx.Error(v.status());
    spec.probability = *v;
    if (std::optional<std::string> seed = ctx.args.Get("seed")) {
      absl::StatusOr<uint64_t> s = ParseUint(*seed);
      if (!s.ok()) {
        return ctx.Error(absl::InvalidArgumentError(
            absl::StrCat("--seed: ", s.status().message())));
      }
      spec.seed = *s;
    }
  } else {
    spec.always = true;
  }
  spec.region = ctx.args.GetOr("region", "");
  if (std::optional<std::string> op = ctx.args.Get("op")) {
    absl::StatusOr<gc::FenceKind> k = gc::ParseFenceKind(*op);
    if (!k.ok()) return ctx.Error(k.status());
    spec.op = *k;
  }
  if (std::optional<std::string> l = ctx.args.Get("latency-us")) {
    absl::StatusOr<uint64_t> v = ParseUint(*l, UINT32_MAX);
    if (!v.ok()) {
      return ctx.Error(absl::InvalidArgumentError(
          absl::StrCat("--latency-us: ", v.status().message())));
    }
    spec.latency_us = static_cast<uint32_t>(*v);
  }
  CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::FaultInfo> f = client->InjectFault(spec, ctx.call);
  if (!f.ok()) return ctx.Error(f.status());
  return PrintResult(
      ctx, [&](JsonWriter& w) { JsonFault(w, *f); },
      [&] {
        return absl::StrCat(
            "fault ", f->id, " armed: ", gc::FaultKindName(f->spec.kind), " ",
            TriggerText(f->spec), " region ",
            f->spec.region.empty() ? "*" : f->spec.region, " op ",
            f->spec.op == gc::FenceKind::kUnspecified
                ? "*"
                : gc::FenceKindName(f->spec.op),
            "\n");
      });
}

int RunFaultClear(Ctx& ctx) {
  const bool all = ctx.args.Has("all");
  if (all == !ctx.pos().empty()) {
    return ctx.Usage("give a fault ID or --all");
  }
  uint64_t id = 0;
  if (!all) {
    absl::StatusOr<uint64_t> v = ParseUint(ctx.pos()[0]);
    if (!v.ok() || *v == 0) {
      return ctx.Error(absl::InvalidArgumentError(
          absl::StrCat("bad fault id '", ctx.pos()[0], "'")));
    }
    id = *v;
  }
  CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<uint32_t> cleared = client->ClearFaults(id, ctx.call);
  if (!cleared.ok()) return ctx.Error(cleared.status());
  return PrintResult(
      ctx,
      [&](JsonWriter& w) {
        w.BeginObject();
        w.FieldUint("cleared", *cleared);
        w.EndObject();
      },
      [&] { return absl::StrCat("cleared ", *cleared, " fault(s)\n"); });
}

int RunFaultList(Ctx& ctx) {
  CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<std::vector<gc::FaultInfo>> faults =
      client->ListFaults(ctx.call);
  if (!faults.ok()) return ctx.Error(faults.status());
  if (ctx.json) {
    JsonWriter w;
    w.BeginObject();
    w.Key("faults");
    w.BeginArray();
    for (const gc::FaultInfo& f : *faults) JsonFault(w, f);
    w.EndArray();
    w.EndObject();
    PrintJson(w);
  } else if (faults->empty()) {
    PrintOut("no faults armed\n");
  } else {
    PrintOut(FaultTable(*faults));
  }
  return kExitOk;
}

#undef CLIENT_OR_RETURN

const FlagSpec kWaitFlag = {"wait", "",
                            "return once the fence has signalled "
                            "and print it"};

const std::vector<Command>& Commands() {
  static const auto* commands = new std::vector<Command>{
      {"create",
       "SIZE [flags]",
       "create a buffer object",
       "SIZE is bytes, a multiple of 4096; suffixes K, M, G (binary): 4K, "
       "64MiB.\nPrints the handle and the fence of the initial clear.",
       {{"placements", "LIST",
         "regions, most preferred first (default lmem,smem)"},
        {"cpu", "", "keep every LMEM placement inside the CPU aperture"},
        {"pin", "", "create pinned (pin count 1)"},
        {"label", "L", "free text for people (at most 256 bytes)"},
        {"quiet", "", "print only the handle", 'q'}},
       1,
       1,
       RunCreate},
      {"destroy", "HANDLE", "destroy an object", "", {}, 1, 1, RunDestroy},
      {"get", "HANDLE", "describe an object", "", {}, 1, 1, RunGet},
      {"list",
       "[--all]",
       "list your objects",
       "",
       {{"all", "", "every principal's objects (admins only)"}},
       0,
       0,
       RunList},
      {"write",
       "HANDLE [FILE|-] [--offset N]",
       "write a file (or stdin) into an object",
       "Reads FILE, or stdin when FILE is - or absent, and streams it in 1 MiB "
       "chunks.",
       {{"offset", "N", "object offset of the first byte (default 0)"}},
       1,
       2,
       RunWrite},
      {"read",
       "HANDLE [FILE|-] [--offset N] [--length N]",
       "read an object into a file (or stdout)",
       "Writes to FILE, or to stdout (binary) when FILE is - or absent.",
       {{"offset", "N", "first byte to read (default 0)"},
        {"length", "N", "bytes to read (default: to the end)"}},
       1,
       2,
       RunRead},
      {"migrate",
       "HANDLE REGION [--wait]",
       "move an object to a region",
       "Prints the migration fence; with --wait, the signalled fence (exit 7 "
       "if it ended UNKNOWN_STATE, 12 if FAILED).",
       {kWaitFlag},
       2,
       2,
       RunMigrate},
      {"pin",
       "HANDLE",
       "pin an object (no eviction or migration)",
       "",
       {},
       1,
       1,
       [](Ctx& c) { return RunPinUnpin(c, true); }},
      {"unpin",
       "HANDLE",
       "unpin an object",
       "",
       {},
       1,
       1,
       [](Ctx& c) { return RunPinUnpin(c, false); }},
      {"exec fill",
       "HANDLE --value V [--offset N] [--length N] [--wait]",
       "fill bytes of an object on the copy engine",
       "",
       {{"value", "V", "byte value 0..255 (required)"},
        {"offset", "N", "first byte (default 0)"},
        {"length", "N", "bytes (default: to the end)"},
        kWaitFlag},
       1,
       1,
       RunExecFill},
      {"exec copy",
       "SRC DST [--src-offset N] [--dst-offset N] [--length N] "
       "[--wait]",
       "copy bytes between objects on the copy engine",
       "",
       {{"src-offset", "N", "first source byte (default 0)"},
        {"dst-offset", "N", "first destination byte (default 0)"},
        {"length", "N", "bytes (default: to the end of SRC)"},
        kWaitFlag},
       2,
       2,
       RunExecCopy},
      {"exec checksum",
       "HANDLE [--offset N] [--length N]",
       "FNV-1a 64 of object bytes, computed by the copy engine",
       "Prints `0x<16 hex digits>  HANDLE`.",
       {{"offset", "N", "first byte (default 0)"},
        {"length", "N", "bytes (default: to the end)"}},
       1,
       1,
       RunExecChecksum},
      {"fence get",
       "ID",
       "show a fence's status (never blocks)",
       "",
       {},
       1,
       1,
       RunFenceGet},
      {"fence wait",
       "ID [--timeout DUR]",
       "wait for a fence to signal",
       "Prints the fence: outcome (BLIT_OK, FALLBACK_COPY, FALLBACK_CLEAR, "
       "FALLBACK_DEVICE_COPY, FALLBACK_DEVICE_CLEAR, "
       "UNKNOWN_STATE, FAILED) and error.\nExit 8 if it did not signal in "
       "time, 7 if UNKNOWN_STATE, 12 if FAILED.",
       {{"timeout", "DUR", "how long to wait (default 10s)"}},
       1,
       1,
       RunFenceWait},
      {"fence watch",
       "[--handle H] [--all] [--kinds LIST] [--count N] "
       "[--timeout DUR]",
       "print fence events as they happen",
       "Runs until interrupted (Ctrl-C), --count events, or --timeout.",
       {{"handle", "H", "only this object's events"},
        {"all", "", "every principal's objects (admins only)"},
        {"kinds", "LIST",
         "only these kinds: blit_ok,fallback_taken,unknown_state,failed,"
         "evicted"},
        {"count", "N", "stop after N events"},
        {"timeout", "DUR", "stop after this long"}},
       0,
       0,
       RunFenceWatch},
      {"regions",
       "[NAME]",
       "show memory regions",
       "Without NAME: a table of every region. With NAME: all of its fields.",
       {},
       0,
       1,
       RunRegions},
      {"evict",
       "REGION [--wait]",
       "evict every evictable object from a region (admin)",
       "",
       {kWaitFlag},
       1,
       1,
       RunEvict},
      {"fault inject",
       "KIND (--next N | --probability P [--seed S] | --always) [--region R] "
       "[--op OP] [--latency-us N]",
       "arm a fault (admin; daemon started with fault injection)",
       "KIND: fail_blit, fail_clear, fail_work_allocation, ban_memcpy, "
       "wedge_engine, engine_latency.\nOP: clear, copy (= migrate), evict "
       "(not for wedge_engine and engine_latency).\nFaults affect every "
       "principal's operations in scope.",
       {{"next", "N", "fire on the next N matching events"},
        {"probability", "P", "fire with probability P in [0, 1]"},
        {"seed", "S", "generator seed for --probability (0: daemon picks)"},
        {"always", "", "fire on every matching event"},
        {"region", "R", "only operations whose destination is region R"},
        {"op", "OP", "only operations of this kind"},
        {"latency-us", "N", "engine_latency: added delay per command"}},
       1,
       1,
       RunFaultInject},
      {"fault clear",
       "(ID | --all)",
       "disarm a fault, or all (admin)",
       "",
       {{"all", "", "every fault"}},
       0,
       1,
       RunFaultClear},
      {"fault list",
       "",
       "list armed faults and their counts (admin)",
       "",
       {},
       0,
       0,
       RunFaultList},
      {"devices",
       "",
       "list the host's DRM devices (from the daemon)",
       "",
       {},
       0,
       0,
       RunDevices},
      {"stats",
       "",
       "daemon counters, RPC statistics and regions",
       "",
       {},
       0,
       0,
       RunStats},
      {"info",
       "",
       "daemon version, backend, caller and limits",
       "",
       {},
       0,
       0,
       RunInfo},
      {"ping", "", "check that the daemon answers", "", {}, 0, 0, RunPing},
      {"selftest",
       "[--bytes-per-region N] [--with-faults]",
       "run the daemon's live no-stale-bytes self-test (admin)",
       "Exit 1 if it found violations. Default deadline 5m.",
       {{"bytes-per-region", "N", "scratch bytes per region (default 1M)"},
        {"with-faults", "", "also exercise the failsafe with faults"}},
       0,
       0,
       RunSelfTest},
  };
  return *commands;
}

// Command groups: "exec fill" belongs to "exec".
bool IsGroup(absl::string_view word) {
  return word == "exec" || word == "fence" || word == "fault";
}

const Command* FindCommand(absl::string_view name) {
  for (const Command& c : Commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string CommandUsage(const Command& c) {
  std::string out = absl::StrCat("usage: gpumigctl ", c.name);
  if (!c.synopsis.empty()) absl::StrAppend(&out, " ", c.synopsis);
  absl::StrAppend(&out, "\n\n", c.summary, "\n");
  if (!c.details.empty()) absl::StrAppend(&out, c.details, "\n");
  std::vector<FlagSpec> flags = c.flags;
  flags.push_back({"help", "", "show this help", 'h'});
  absl::StrAppend(&out, "\nFlags:\n", FormatFlagHelp(flags));
  absl::StrAppend(&out,
                  "\nGlobal flags (--socket, --target, --json, --timeout, ...) "
                  "also apply; see `gpumigctl help`.\n");
  return out;
}

std::string GroupUsage(absl::string_view group) {
  std::string out = absl::StrCat("usage: gpumigctl ", group,
                                 " SUBCOMMAND ...\n\nSubcommands:\n");
  for (const Command& c : Commands()) {
    if (absl::StartsWith(c.name, absl::StrCat(group, " "))) {
      absl::StrAppend(&out, "  gpumigctl ", c.name, " ", c.synopsis, "\n      ",
                      c.summary, "\n");
    }
  }
  return out;
}

std::string MainUsage() {
  std::string out =
      "usage: gpumigctl [global flags] COMMAND [args] [flags]\n\n"
      "Command-line client of gpumigd, the GPU memory migration daemon.\n\n"
      "Commands:\n";
  for (const Command& c : Commands()) {
    absl::StrAppend(&out, "  ", c.name,
                    c.synopsis.empty() ? "" : absl::StrCat(" ", c.synopsis),
                    "\n      ", c.summary, "\n");
  }
  absl::StrAppend(&out, "  help [COMMAND]\n      show help\n");
  absl::StrAppend(&out, "\nGlobal flags (before or after the command):\n",
                  FormatFlagHelp(GlobalFlags()));
  absl::StrAppend(
      &out,
      "\nSizes, offsets and lengths take binary suffixes: 4096, 4K, 1M, "
      "64MiB, 0x1000.\nDurations: 10s, 500ms, 2m, or plain seconds.\n"
      "With --json every command prints one JSON object per result (fence "
      "watch: one per event).\nErrors go to stderr as "
      "`gpumigctl: <command>: <CODE>: <message>`.\n\n",
      ExitCodeHelp());
  return out;
}

int Ctx::Usage(absl::string_view message) const {
  std::cerr << "gpumigctl: " << command->name << ": " << message << "\n\n"
            << CommandUsage(*command);
  return kExitUsage;
}

int MainUsageError(absl::string_view message) {
  std::cerr << "gpumigctl: " << message << "\n\n" << MainUsage();
  return kExitUsage;
}

bool IsGlobalValueFlag(absl::string_view arg) {
  if (!absl::StartsWith(arg, "--") || arg.find('=') != absl::string_view::npos)
    return false;
  for (const FlagSpec& f : GlobalFlags()) {
    if (arg.substr(2) == f.name) return f.takes_value();
  }
  return false;
}

int Main(const std::vector<std::string>& argv) {
  // 1. Global flags before the command.
  size_t i = 0;
  std::vector<std::string> prefix;
  while (i < argv.size() && absl::StartsWith(argv[i], "-") && argv[i] != "-") {
    prefix.push_back(argv[i]);
    if (IsGlobalValueFlag(argv[i]) && i + 1 < argv.size()) {
      prefix.push_back(argv[++i]);
    }
    ++i;
  }
  absl::StatusOr<ParsedArgs> global = ParseArgs(prefix, GlobalFlags());
  if (!global.ok()) return MainUsageError(global.status().message());
  if (i >= argv.size()) {
    if (global->Has("help")) {
      PrintOut(MainUsage());
      return kExitOk;
    }
    return MainUsageError("no command given");
  }

  // 2. The command (one or two words).
  std::string name = argv[i++];
  if (name == "help") {
    std::vector<std::string> words(argv.begin() + i, argv.end());
    if (words.empty()) {
      PrintOut(MainUsage());
      return kExitOk;
    }
    std::string wanted = absl::StrJoin(words, " ");
    if (const Command* c = FindCommand(wanted)) {
      PrintOut(CommandUsage(*c));
      return kExitOk;
    }
    if (words.size() == 1 && IsGroup(wanted)) {
      PrintOut(GroupUsage(wanted));
      return kExitOk;
    }
    return MainUsageError(absl::StrCat("unknown command '", wanted, "'"));
  }
  if (IsGroup(name)) {
    if (i >= argv.size() || argv[i] == "--help" || argv[i] == "-h") {
      const bool asked = i < argv.size();
      std::string usage = GroupUsage(name);
      if (asked) {
        PrintOut(usage);
        return kExitOk;
      }
      std::cerr << "gpumigctl: " << name << ": missing subcommand\n\n" << usage;
      return kExitUsage;
    }
    std::string full = absl::StrCat(name, " ", argv[i]);
    if (FindCommand(full) == nullptr) {
      std::cerr << "gpumigctl: unknown command '" << full << "'\n\n"
                << GroupUsage(name);
      return kExitUsage;
    }
    name = full;
    ++i;
  }
  const Command* command = FindCommand(name);
  if (command == nullptr) {
    return MainUsageError(absl::StrCat("unknown command '", name, "'"));
  }

  // 3. The command's flags, positionals, and global flags after the command
  // (a command flag of the same name, like fence wait --timeout, wins).
  std::vector<FlagSpec> specs = command->flags;
  for (const FlagSpec& g : GlobalFlags()) {
    bool shadowed = false;
    for (const FlagSpec& f : command->flags) shadowed |= f.name == g.name;
    if (!shadowed) specs.push_back(g);
  }
  Ctx ctx;
  ctx.command = command;
  ctx.global = *std::move(global);
  absl::StatusOr<ParsedArgs> args =
      ParseArgs(std::vector<std::string>(argv.begin() + i, argv.end()), specs);
  if (!args.ok()) return ctx.Usage(args.status().message());
  ctx.args = *std::move(args);
  if (ctx.args.Has("help") || ctx.global.Has("help")) {
    PrintOut(CommandUsage(*command));
    return kExitOk;
  }
  const size_t n = ctx.pos().size();
  if (n < command->min_args) {
    return ctx.Usage(
        absl::StrCat("missing argument (expected ", command->synopsis, ")"));
  }
  if (n > command->max_args) {
    return ctx.Usage(absl::StrCat("unexpected argument '",
                                  ctx.pos()[command->max_args], "'"));
  }

  // 4. Connection and call options.
  ctx.json = ctx.args.Has("json") || ctx.global.Has("json");
  ctx.connect.unix_socket = ctx.Global("socket").value_or("");
  ctx.connect.tcp_target = ctx.Global("target").value_or("");
  ctx.connect.use_shared_buffers =
      !(ctx.args.Has("no-shm") || ctx.global.Has("no-shm"));
  ctx.connect.tls_root_ca_file = ctx.Global("tls-ca").value_or("");
  ctx.connect.tls_cert_file = ctx.Global("tls-cert").value_or("");
  ctx.connect.tls_key_file = ctx.Global("tls-key").value_or("");
  ctx.connect.tls_server_name_override =
      ctx.Global("tls-server-name").value_or("");
  // fence wait/watch own --timeout after the command; only a global one
  // before the command sets their RPC deadline.
  std::optional<std::string> timeout = ctx.global.Get("timeout");
  bool command_owns_timeout = false;
  for (const FlagSpec& f : command->flags) {
    command_owns_timeout |= f.name == "timeout";
  }
  if (!command_owns_timeout && ctx.args.Get("timeout").has_value()) {
    timeout = ctx.args.Get("timeout");
  }
  if (timeout.has_value()) {
    absl::StatusOr<absl::Duration> d = ParseDurationFlag(*timeout);
    if (!d.ok()) return ctx.Error(d.status());
    ctx.call.timeout =
        *d == absl::ZeroDuration() ? absl::InfiniteDuration() : *d;
    ctx.timeout_given = true;
  }
  int rc = command->run(ctx);
  if (!std::cout.flush() && rc == kExitOk) {
    std::cerr << "gpumigctl: " << command->name
              << ": error writing the output\n";
    rc = kExitOther;
  }
  return rc;
}

}  // namespace
}  // namespace gpumig::cli

int main(int argc, char** argv) {
  // A reader that goes away (`gpumigctl read H | head`) is an EPIPE error on
  // write, not a silent death by SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  return gpumig::cli::Main(args);
}
