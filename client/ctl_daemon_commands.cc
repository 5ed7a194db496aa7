// gpumigctl's DaemonService: devices, stats, info, ping, selftest.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cli_args.h"
#include "client/cli_format.h"
#include "client/ctl_commands.h"
#include "client/ctl_context.h"
#include "client/ctl_render.h"
#include "client/gpumig_client.h"

namespace gpumig::cli {
namespace {

namespace gc = ::gpumig::client;

int RunPing(Ctx& ctx) {
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
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
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::DaemonInfo> info = client->GetInfo(ctx.call);
  if (!info.ok()) return ctx.Error(info.status());
  return PrintResult(
      ctx, [&](JsonWriter& w) { JsonInfo(w, *info, client->target()); },
      [&] { return HumanInfo(*info, client->target()); });
}

int RunDevices(Ctx& ctx) {
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
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
    ctx.PrintJson(w);
    return kExitOk;
  }
  if (info->drm_devices.empty()) {
    ctx.Print("no DRM devices\n");
    return kExitOk;
  }
  ctx.Print(DeviceTable(info->drm_devices));
  return kExitOk;
}

int RunStats(Ctx& ctx) {
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::DaemonStats> stats = client->GetStats(ctx.call);
  if (!stats.ok()) return ctx.Error(stats.status());
  return PrintResult(
      ctx, [&](JsonWriter& w) { JsonStats(w, *stats); },
      [&] { return HumanStats(*stats); });
}

int RunSelfTest(Ctx& ctx) {
  absl::StatusOr<uint64_t> bytes = SizeFlag(ctx, "bytes-per-region", 0);
  if (!bytes.ok()) return ctx.Error(bytes.status());
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::SelfTestResult> r =
      client->SelfTest(*bytes, ctx.args.Has("with-faults"),
                       ctx.CallWithDefault(absl::Minutes(5)));
  if (!r.ok()) return ctx.Error(r.status());
  PrintResult(
      ctx, [&](JsonWriter& w) { JsonSelfTest(w, *r); },
      [&] { return HumanSelfTest(*r); });
  if (!r->passed) {
    *ctx.err << "gpumigctl: selftest: " << r->violations
             << " violation(s) found\n";
    return kExitCheckFailed;
  }
  return kExitOk;
}

}  // namespace

std::vector<Command> DaemonCommands() {
  return {
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
}

}  // namespace gpumig::cli
