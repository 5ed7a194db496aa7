// Campaign: the gpumig torture campaign (gpumig-torture's engine).
//
// Drives a running gpumigd over gRPC with many concurrent clients, each a
// thread with its own Client, for a bounded time and/or operation count.
// Together the clients keep `oversubscribe` x the first LMEM region's size
// in live objects, so eviction never stops. Each client creates, writes
// (self-identifying patterns, pattern.h), reads, checksums on the engine,
// migrates, pins, fills, copies and destroys its own objects while a
// scheduler thread arms and disarms faults from a seeded FaultSchedule and
// evicts regions, and a watcher thread streams every fence event.
//
// Each client keeps an exact shadow copy of every object it owns, and checks
// continuously:
//   (1) content: every Read and every engine checksum equals the shadow --
//       never bytes the reader did not write (stale, foreign or cleared
//       bytes are described by their pattern tag);
//   (2) every migration (and Exec) whose fence has no error preserved (or
//       applied) content exactly: it is read back or checksummed;
//   (3) every fence with UNKNOWN_STATE carries an error and left its object
//       UNKNOWN with Read, Write, Exec, Migrate and Pin refused (DATA_LOSS);
//       and no object goes unknown except through a fence with an error;
//   (4) after everything is destroyed, every region's allocated bytes and
//       objects, and the daemon's object counts, are back to their values
//       before the campaign.
// plus the API contract: the documented status codes, fence fields
// consistent with their outcome, pins that keep objects in place.
//
// A daemon that goes away (UNAVAILABLE, e.g. SIGKILL) stops the campaign
// promptly: every client returns on its next (or current) call.
//
// Thread-safe: Run() once.
#ifndef GPUMIG_TESTS_TORTURE_CAMPAIGN_H_
#define GPUMIG_TESTS_TORTURE_CAMPAIGN_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/gpumig_client.h"

namespace gpumig::torture {

struct CampaignOptions {
  client::ConnectOptions connect;
  uint64_t seed = 0;
  int clients = 8;
  // Stop after this many operations in all (0: no limit) ...
  int64_t ops = 0;
  // ... or after this long (0: no limit). At least one must be set.
  absl::Duration duration = absl::ZeroDuration();
  // Live object bytes, as a multiple of the LMEM region's size.
  double oversubscribe = 1.75;
  // Arm faults from the seeded schedule (needs an admin caller and a daemon
  // with fault injection enabled).
  bool faults = true;
  // Mean time between schedule actions.
  absl::Duration fault_gap = absl::Milliseconds(250);
  // Run DaemonService.SelfTest (with_faults = faults) this often; 0: never.
  absl::Duration selftest_every = absl::ZeroDuration();
  // Deadline of each RPC.
  absl::Duration rpc_timeout = absl::Seconds(30);
  // Largest object a client creates (a multiple of 4096).
  uint64_t max_object_bytes = 2 << 20;
  // Print each schedule action as it runs (stderr).
  bool print_actions = true;
  // Print progress every this often (stderr); 0: never.
  absl::Duration progress_every = absl::Seconds(10);
  // How long the final accounting check waits for the regions to drain.
  absl::Duration drain_timeout = absl::Seconds(30);
  // Share of client Writes/Reads sent through shared buffers instead of the
  // streams, and how often a client with a buffer registered and in use is
  // SIGKILLed (0: never); campaign_shm.h. Off on TCP.
  double shm_share = 0.3;
  absl::Duration shm_kill_every = absl::Seconds(2);
  // Finding keys (the second word of a finding, e.g. "fence-forgotten")
  // reported as known issues: printed and counted, but not violations.
  std::set<std::string> known_issues;
};

// Counters; merged over clients.
struct MethodStats {
  uint64_t calls = 0;
  std::map<std::string, uint64_t> errors;  // by status code name
};

struct CampaignStats {
  uint64_t ops = 0;
  std::map<std::string, uint64_t> ops_by_kind;
  std::map<std::string, MethodStats> rpcs;  // by client method name
  // Fence outcomes seen by clients, "MIGRATE/FALLBACK_COPY" etc.
  std::map<std::string, uint64_t> outcomes;
  uint64_t bytes_written = 0, bytes_read = 0, bytes_verified = 0,
           bytes_checksummed = 0;
  uint64_t objects_created = 0, objects_destroyed = 0;
  // Objects found in unknown state, by the kind of fence that made them so
  // ("MIGRATE", "EVICT", "CLEAR", "EXEC", "?" if the fence aged out).
  std::map<std::string, uint64_t> unknown_objects;
  // Objects given up after a write kept failing (content uncertain).
  uint64_t abandoned_objects = 0;
  // Fences gone from the history before the client could ask.
  uint64_t fences_aged_out = 0;
  // Exec fills/copies that ended FAILED (no failsafe, by contract); each
  // checked to hold only the old or the new bytes.
  uint64_t exec_failed = 0;
  // Schedule.
  std::map<std::string, uint64_t> faults_injected, faults_fired;
  uint64_t fault_inject_refused = 0;
  uint64_t evict_calls = 0, evict_objects = 0;
  uint64_t selftests = 0, selftests_passed = 0;
  // Watch events by kind.
  std::map<std::string, uint64_t> events;

  void Merge(const CampaignStats& other);
};

// One finding. `check` is the family: "content" (1), "migration" (2),
// "unknown-state" (3), "accounting" (4), "contract" (the API's documented
// codes and fields), "selftest". `key` names the kind of finding, stable
// across runs (e.g. "stale-or-foreign-bytes", "fence-forgotten"); findings
// are grouped by it.
struct Violation {
  std::string check;
  std::string key;
  std::string what;
  absl::Duration at;
  bool known = false;  // listed in CampaignOptions::known_issues
};

struct CampaignResult {
  uint64_t seed = 0;
  std::string target;
  int clients = 0;
  absl::Duration elapsed;
  CampaignStats stats;
  // Region counters (daemon side) over the campaign: after minus before.
  std::map<std::string, client::RegionCounters> region_deltas;
  std::vector<client::RegionInfo> regions_before, regions_after;
  // Findings not listed as known issues; the exit status follows these.
  uint64_t violations = 0;
  std::map<std::string, uint64_t> violation_counts;  // by key
  std::map<std::string, uint64_t> known_counts;      // by key
  // The first few of each key (at most 100 in all).
  std::vector<Violation> violation_list;
  // The daemon went away mid-campaign.
  bool unavailable = false;
  std::string unavailable_message;
  absl::Duration unavailable_at;
  // Time from the first UNAVAILABLE to every thread having returned.
  absl::Duration unavailable_to_exit;
  bool accounting_checked = false;
  std::string accounting;  // "ok" or what was left over
};

class Campaign {
 public:
  explicit Campaign(CampaignOptions options);
  ~Campaign();
  Campaign(const Campaign&) = delete;
  Campaign& operator=(const Campaign&) = delete;

  // Runs the campaign. Errors: INVALID_ARGUMENT for bad options; the
  // daemon's status if it cannot be reached or set up (no LMEM/SMEM region,
  // faults wanted but not allowed). Everything found during the campaign is
  // in the result.
  absl::StatusOr<CampaignResult> Run();

  // --- for the workers (campaign.cc)
  const CampaignOptions& options() const { return options_; }
  bool stopping() const { return stop_.HasBeenNotified(); }
  bool unavailable() const {
    return unavailable_.load(std::memory_order_acquire);
  }
  absl::Duration Elapsed() const { return absl::Now() - start_; }
  // Takes one operation from the budget; false once it is spent or the
  // campaign is stopping.
  bool TakeOp();
  void AddViolation(const std::string& check, const std::string& key,
                    const std::string& what) ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t violations() const {
    return violations_.load(std::memory_order_relaxed);
  }
  // Records a status; UNAVAILABLE stops the campaign.
  void NoteStatus(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  void Stop() {
    if (!stop_.HasBeenNotified()) stop_.Notify();
  }
  // Notified once the scheduler has disarmed every fault at the end.
  absl::Notification& faults_cleared() { return faults_cleared_; }
  // Live ops across clients, for progress lines.
  std::atomic<uint64_t>& live_ops() { return live_ops_; }
  std::atomic<uint64_t>& live_unknown() { return live_unknown_; }

  struct Layout {
    std::string lmem, smem;
    uint64_t lmem_size = 0, lmem_aperture = 0, smem_size = 0;
  };
  const Layout& layout() const { return layout_; }

 private:
  class Worker;
  class Scheduler;

  absl::Status Setup(client::Client* admin);
  void Watcher(client::WatchCanceller* canceller, CampaignStats* stats);
  void CheckAccounting(client::Client* admin, CampaignResult* result);

  const CampaignOptions options_;
  Layout layout_;
  absl::Time start_;
  std::atomic<int64_t> ops_left_{0};
  absl::Notification stop_;
  absl::Notification faults_cleared_;
  std::atomic<bool> unavailable_{false};
  std::atomic<uint64_t> violations_{0};
  std::atomic<uint64_t> live_ops_{0};
  std::atomic<uint64_t> live_unknown_{0};
  absl::Time unavailable_time_;

  std::vector<client::RegionInfo> baseline_regions_;
  client::DaemonStats baseline_stats_;

  absl::Mutex mu_;
  std::vector<Violation> violation_list_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> violation_counts_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> known_counts_ ABSL_GUARDED_BY(mu_);
  std::string unavailable_message_ ABSL_GUARDED_BY(mu_);
  absl::Duration unavailable_at_ ABSL_GUARDED_BY(mu_);
};

// The summary, as text (for people) or one JSON object.
std::string FormatSummary(const CampaignResult& result);
std::string FormatSummaryJson(const CampaignResult& result);

}  // namespace gpumig::torture

#endif  // GPUMIG_TESTS_TORTURE_CAMPAIGN_H_
