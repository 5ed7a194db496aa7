// Metrics: gpumigd's Prometheus endpoint (prometheus-cpp's Exposer, HTTP GET
// /metrics in the text exposition format 0.0.4), on 127.0.0.1:9464 by
// default.
//
// Two sources feed it:
//
//  - events the daemon reports as they happen: OnRpc() once per finished RPC
//    and OnFenceWait() once per wait on a fence;
//  - state read at scrape time: on every scrape Metrics calls the snapshot
//    source (SetSnapshotSource) once and exports what it returns. The core's
//    region counters are cumulative atomics, so exporting them as counters
//    at scrape time is exact and costs nothing between scrapes.
//
// What it exports. Counters end in _total, sizes are _bytes, durations
// _seconds (base units, as Prometheus asks). Labels: region (the region's
// name), kind (lmem/smem), method (full gRPC name,
// "/gpumig.v1.ObjectService/Create"), code (gRPC code name, "OK",
// "RESOURCE_EXHAUSTED"), and the fault kind (fail_blit, ...).
//
//   name                                       type       labels
//   gpumig_build_info                          gauge (1)  version, backend
//   gpumig_start_time_seconds                  gauge      -
//   gpumig_rpcs_total                          counter    method, code
//   gpumig_rpc_duration_seconds                histogram  method
//   gpumig_fence_wait_seconds                  histogram  -
//   from the snapshot, only while a source is set:
//   gpumig_region_size_bytes                   gauge      region, kind
//   gpumig_region_aperture_bytes               gauge      region, kind
//   gpumig_region_allocated_bytes              gauge      region, kind
//   gpumig_region_free_bytes                   gauge      region, kind
//   gpumig_region_largest_free_block_bytes     gauge      region, kind
//   gpumig_region_objects                      gauge      region, kind
//   gpumig_region_evictions_total              counter    region, kind
//   gpumig_region_blits_total                  counter    region, kind
//   gpumig_region_blit_failures_total          counter    region, kind
//   gpumig_region_fallback_copies_total        counter    region, kind
//   gpumig_region_fallback_clears_total        counter    region, kind
//   gpumig_region_unknown_state_marks_total    counter    region, kind
//   gpumig_region_migrated_in_bytes_total      counter    region, kind
//   gpumig_region_migrated_out_bytes_total     counter    region, kind
//   gpumig_faults_fired_total                  counter    fault
//   gpumig_objects                             gauge      -
//   gpumig_object_bytes                        gauge      -
//   gpumig_unknown_state_objects               gauge      -
//   gpumig_fences_pending                      gauge      -
//   gpumig_watchers                            gauge      -
//   gpumig_engine_wedged                       gauge (0/1) -
//   gpumig_shared_buffers                      gauge      -
//   gpumig_shared_buffer_bytes                 gauge      -
//   gpumig_shared_buffer_connections           gauge      -
//   gpumig_shared_buffer_registrations_total   counter    -
//   gpumig_shared_buffer_rejections_total      counter    -
//   gpumig_shared_buffer_copied_bytes_total    counter    direction
//
// docs/operations.md says what an alert on each would mean.
//
// Cardinality is bounded: at most kMaxRpcMethods method label values (the
// first kMaxRpcMethods - 1 methods seen, then method="other" for the rest),
// codes are the 17 gRPC codes (anything else is "UNKNOWN").
//
// Thread-safe. OnRpc() and OnFenceWait() take one short lock and never
// block on a scrape; a scrape never holds that lock while it calls the
// snapshot source.
#ifndef GPUMIG_DAEMON_METRICS_METRICS_H_
#define GPUMIG_DAEMON_METRICS_METRICS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/region_counters.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace gpumig {
namespace daemon {

inline constexpr char kDefaultMetricsAddress[] = "127.0.0.1:9464";
inline constexpr int kMaxRpcMethods = 64;

// One region as a scrape sees it (see MemoryManager::GetRegion). The
// cumulative fields, the inherited RegionCounters (common/
// region_counters.h), only ever grow during one daemon lifetime.
struct RegionSnapshot : RegionCounters {
  std::string name;
  std::string kind;  // "lmem" or "smem"
  uint64_t size_bytes = 0;
  uint64_t aperture_bytes = 0;
  uint64_t allocated_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t largest_free_block_bytes = 0;
  uint64_t objects = 0;  // placed here now
};

// Fired count of one fault kind, cumulative (FaultInjector::FiredTotal: it
// keeps counting across Remove/Clear).
struct FaultFiredSnapshot {
  std::string kind;  // FaultKindName(): "fail_blit", "wedge_engine", ...
  uint64_t fired = 0;
};

// The daemon's state at one scrape. A plain struct so the daemon (or
// manager_snapshot.h) can fill it from MemoryManager.
struct Snapshot {
  std::vector<RegionSnapshot> regions;
  std::vector<FaultFiredSnapshot> faults_fired;
  uint64_t objects = 0;  // live objects, every principal
  uint64_t object_bytes = 0;
  uint64_t unknown_state_objects = 0;  // live objects in unknown state now
  uint64_t fences_pending = 0;
  uint64_t watchers = 0;
  bool engine_wedged = false;
  // Shared buffers (GetStats().shared_buffers; all 0 when off).
  uint64_t shared_buffers = 0;
  uint64_t shared_buffer_bytes = 0;
  uint64_t shared_buffer_connections = 0;
  uint64_t shared_buffer_registrations = 0;
  uint64_t shared_buffer_rejections = 0;
  uint64_t shared_buffer_bytes_written = 0;
  uint64_t shared_buffer_bytes_read = 0;
};

struct MetricsOptions {
  // "host:port" with a literal IPv4 address, a bracketed IPv6 address
  // ("[::1]:9464") or "localhost"; port 0 picks a free port (see port()).
  // Empty: no HTTP endpoint (Render() still works).
  std::string listen_address = kDefaultMetricsAddress;
  // gpumig_build_info's labels.
  std::string version;
  std::string backend;
  // HTTP worker threads.
  int http_threads = 2;
};

class Metrics {
 public:
  using SnapshotSource = std::function<Snapshot()>;

  // Starts the endpoint. INVALID_ARGUMENT: listen_address is not
  // "host:port" as above, or http_threads < 1. UNAVAILABLE: the address
  // cannot be bound (in use, not local, address family not allowed).
  static absl::StatusOr<std::unique_ptr<Metrics>> Create(
      MetricsOptions options);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;
  // Stop()s first.
  ~Metrics();

  // The bound port (the real one when asked for port 0); 0 with no
  // endpoint. Constant after Create().
  int port() const { return port_; }
  // "host:port" actually bound, e.g. "127.0.0.1:41234"; "" with no
  // endpoint. For the "listening" log line.
  const std::string& bound_address() const { return bound_address_; }

  // One finished RPC: `method` is the full gRPC name, `grpc_code` the
  // numeric grpc::StatusCode (0 = OK), `latency` from the call's start.
  void OnRpc(absl::string_view method, int grpc_code, absl::Duration latency);
  // One wait on a fence (FenceService.Wait, or a Create/Migrate with wait):
  // how long the caller blocked, until the signal or the timeout.
  void OnFenceWait(absl::Duration waited);

  // Sets (or with nullptr clears) what scrapes read. Returns once no scrape
  // is still calling the previous source, so the daemon may destroy what
  // the old source reads right after SetSnapshotSource(nullptr). The source
  // runs on an HTTP worker thread, must not call back into Metrics, and
  // should be quick (it delays only the scrape).
  void SetSnapshotSource(SnapshotSource source);

  // Stops the HTTP endpoint, waiting for scrapes in flight. Idempotent; the
  // On*() calls stay valid.
  void Stop() ABSL_LOCKS_EXCLUDED(stop_mu_);

  // Everything an HTTP scrape would return now, in the text format.
  std::string Render() const;

  class State;  // Implementation (the prometheus::Collectable).

 private:
  Metrics(std::shared_ptr<State> state,
          std::unique_ptr<prometheus::Exposer> exposer, int port,
          std::string bound_address);

  // Constant after construction.
  const std::shared_ptr<State> state_;
  const int port_;
  const std::string bound_address_;

  absl::Mutex stop_mu_;
  std::unique_ptr<prometheus::Exposer> exposer_ ABSL_GUARDED_BY(stop_mu_);
};

// The gRPC code's canonical name ("OK", "DATA_LOSS"); "UNKNOWN" outside
// 0..16.
absl::string_view GrpcCodeName(int code);

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_METRICS_METRICS_H_
