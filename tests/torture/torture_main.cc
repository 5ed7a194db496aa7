// gpumig-torture: the reliability campaign against a running gpumigd.
// Wiring only: flags, the campaign (campaign.h), the summary, exit status.
//
//   gpumig_torture --socket=/run/gpumig/gpumig.sock --duration=10m --clients=16
//   gpumig_torture --target=rig:7443 --tls_ca=ca.pem --tls_cert=c.pem
//       --tls_key=c.key --ops=100000
//   gpumig_torture --seed=1234 --print_schedule=40   # the schedule, offline
//
// Exit status: 0 no violation; 1 at least one violation; 2 bad flags or the
// campaign could not start (daemon unreachable, no fault injection, ...);
// 3 the daemon went away mid-campaign (UNAVAILABLE) with no violation
// before.
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "tests/torture/campaign.h"
#include "tests/torture/schedule.h"

ABSL_FLAG(std::string, socket, "",
          "gpumigd's unix socket (default: $GPUMIG_SOCKET, else "
          "/run/gpumig/gpumig.sock).");
ABSL_FLAG(std::string, target, "",
          "host:port: connect over TCP with mutual TLS instead.");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA bundle for the server (TCP).");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate (TCP).");
ABSL_FLAG(std::string, tls_key, "", "PEM client key (TCP).");
ABSL_FLAG(std::string, tls_server_name, "",
          "Override the name checked in the server certificate.");
ABSL_FLAG(uint64_t, seed, 0,
          "Campaign seed; 0 picks one at random. Printed; pass it back to "
          "replay the fault schedule and the clients' choices.");
ABSL_FLAG(int, clients, 8, "Concurrent clients (threads, one Client each).");
ABSL_FLAG(int64_t, ops, 0, "Stop after this many operations (0: no limit).");
ABSL_FLAG(absl::Duration, duration, absl::ZeroDuration(),
          "Stop after this long, e.g. 45s, 10m (0: no limit). Give --ops, "
          "--duration or both.");
ABSL_FLAG(double, oversubscribe, 1.75,
          "Live object bytes as a multiple of the LMEM region's size.");
ABSL_FLAG(bool, faults, true,
          "Inject faults from the seeded schedule (admin caller and "
          "gpumigd --enable_fault_injection).");
ABSL_FLAG(absl::Duration, fault_gap, absl::Milliseconds(250),
          "Mean time between schedule actions.");
ABSL_FLAG(absl::Duration, selftest_every, absl::ZeroDuration(),
          "Run DaemonService.SelfTest this often during the campaign "
          "(0: never).");
ABSL_FLAG(absl::Duration, rpc_timeout, absl::Seconds(30),
          "Deadline of every RPC.");
ABSL_FLAG(uint64_t, max_object_kib, 2048, "Largest object, KiB (>= 4).");
ABSL_FLAG(std::vector<std::string>, known_issues, {},
          "Comma-separated finding keys to report as known issues (counted, "
          "printed, but not failing the run), e.g. fence-forgotten.");
ABSL_FLAG(double, shm_share, 0.3,
          "Share of Writes/Reads sent through shared buffers (0..1; unix "
          "socket only).");
ABSL_FLAG(absl::Duration, shm_kill_every, absl::Seconds(2),
          "SIGKILL a client with a shared buffer registered and in use this "
          "often (0: never).");
ABSL_FLAG(bool, json, false, "Print the summary as one JSON object.");
ABSL_FLAG(bool, quiet, false, "Do not print schedule actions as they run.");
ABSL_FLAG(absl::Duration, progress_every, absl::Seconds(10),
          "Progress line interval on stderr (0: none).");
ABSL_FLAG(int, print_schedule, 0,
          "Print the first N actions of the seed's fault schedule and exit "
          "(no daemon needed).");
ABSL_FLAG(std::string, schedule_regions, "lmem,smem",
          "Region names for --print_schedule (LMEM first).");

namespace {

using gpumig::torture::Campaign;
using gpumig::torture::CampaignOptions;
using gpumig::torture::CampaignResult;

int PrintSchedule(uint64_t seed, int n) {
  gpumig::torture::ScheduleOptions so;
  so.seed = seed;
  so.mean_gap = absl::GetFlag(FLAGS_fault_gap);
  so.regions = absl::StrSplit(absl::GetFlag(FLAGS_schedule_regions), ',',
                              absl::SkipEmpty());
  gpumig::torture::FaultSchedule schedule(so);
  std::printf("gpumig-torture schedule seed=%llu\n",
              static_cast<unsigned long long>(seed));
  for (int i = 0; i < n; ++i) {
    std::printf("%s\n", schedule.Next().ToString().c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "gpumig-torture: seeded reliability campaign against gpumigd.\n"
      "Usage: gpumig_torture [--socket=PATH | --target=HOST:PORT --tls_*] "
      "(--ops=N | --duration=D) [--clients=N] [--seed=S] ...");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() > 1) {
    std::fprintf(stderr, "gpumig-torture: unexpected argument \"%s\"\n",
                 args[1]);
    return 2;
  }
  uint64_t seed = absl::GetFlag(FLAGS_seed);
  if (seed == 0) {
    std::random_device rd;
    seed = ((uint64_t{rd()} << 32) | rd()) & ((uint64_t{1} << 48) - 1);
    if (seed == 0) seed = 1;
  }
  if (absl::GetFlag(FLAGS_print_schedule) > 0) {
    return PrintSchedule(seed, absl::GetFlag(FLAGS_print_schedule));
  }

  CampaignOptions o;
  o.connect.unix_socket = absl::GetFlag(FLAGS_socket);
  o.connect.tcp_target = absl::GetFlag(FLAGS_target);
  o.connect.tls_root_ca_file = absl::GetFlag(FLAGS_tls_ca);
  o.connect.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  o.connect.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  o.connect.tls_server_name_override = absl::GetFlag(FLAGS_tls_server_name);
  o.connect.default_timeout = absl::GetFlag(FLAGS_rpc_timeout);
  o.seed = seed;
  o.clients = absl::GetFlag(FLAGS_clients);
  o.ops = absl::GetFlag(FLAGS_ops);
  o.duration = absl::GetFlag(FLAGS_duration);
  o.oversubscribe = absl::GetFlag(FLAGS_oversubscribe);
  o.faults = absl::GetFlag(FLAGS_faults);
  o.fault_gap = absl::GetFlag(FLAGS_fault_gap);
  o.selftest_every = absl::GetFlag(FLAGS_selftest_every);
  o.rpc_timeout = absl::GetFlag(FLAGS_rpc_timeout);
  o.max_object_bytes = absl::GetFlag(FLAGS_max_object_kib) * 1024;
  o.print_actions = !absl::GetFlag(FLAGS_quiet);
  o.progress_every = absl::GetFlag(FLAGS_progress_every);
  o.shm_share = absl::GetFlag(FLAGS_shm_share);
  if (!(o.shm_share >= 0 && o.shm_share <= 1)) {
    std::fprintf(stderr, "gpumig-torture: --shm_share must be in [0, 1]\n");
    return 2;
  }
  o.shm_kill_every = absl::GetFlag(FLAGS_shm_kill_every);
  for (const std::string& k : absl::GetFlag(FLAGS_known_issues)) {
    o.known_issues.insert(k);
  }

  std::fprintf(stderr,
               "gpumig-torture: seed=%llu clients=%d ops=%lld duration=%s "
               "oversubscribe=%.2f faults=%s\n",
               static_cast<unsigned long long>(seed), o.clients,
               static_cast<long long>(o.ops),
               absl::FormatDuration(o.duration).c_str(), o.oversubscribe,
               o.faults ? "on" : "off");
  Campaign campaign(o);
  absl::StatusOr<CampaignResult> result = campaign.Run();
  if (!result.ok()) {
    std::fprintf(stderr, "gpumig-torture: cannot run the campaign: %s\n",
                 result.status().ToString().c_str());
    return 2;
  }
  const std::string summary = absl::GetFlag(FLAGS_json)
                                  ? gpumig::torture::FormatSummaryJson(*result)
                                  : gpumig::torture::FormatSummary(*result);
  std::printf("%s\n", summary.c_str());
  std::fflush(stdout);
  if (result->violations > 0) return 1;
  if (result->unavailable) return 3;
  return 0;
}
