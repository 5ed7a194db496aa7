#include "daemon/metrics/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <exception>
#include <limits>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/hostport.h"
#include "common/status_names.h"
#include "core/base/mutex.h"
#include "prometheus/client_metric.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"

namespace gpumig {
namespace daemon {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Upper bounds (seconds) of the latency histograms: 100 us (a sim-backend
// blit) to a minute (a long Wait). Fixed, so series stay comparable across
// releases.
constexpr std::array<double, 18> kLatencyBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60,
};

// A fixed-bucket histogram. Not thread-safe (State's mu_ guards it).
struct Histogram {
  std::array<uint64_t, kLatencyBuckets.size() + 1> counts = {};  // +Inf last
  double sum = 0;
  uint64_t count = 0;

  void Observe(absl::Duration d) {
    const double s = std::max(0.0, absl::ToDoubleSeconds(d));
    const size_t i =
        std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), s) -
        kLatencyBuckets.begin();
    ++counts[i];
    sum += s;
    ++count;
  }

  ClientMetric ToMetric(std::vector<ClientMetric::Label> labels) const {
    ClientMetric m;
    m.label = std::move(labels);
    m.histogram.sample_count = count;
    m.histogram.sample_sum = sum;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < counts.size(); ++i) {
      cumulative += counts[i];
      ClientMetric::Bucket b;
      b.cumulative_count = cumulative;
      b.upper_bound = i < kLatencyBuckets.size()
                          ? kLatencyBuckets[i]
                          : std::numeric_limits<double>::infinity();
      m.histogram.bucket.push_back(b);
    }
    return m;
  }
};

struct MethodStats {
  std::array<uint64_t, kStatusCodeCount> calls = {};
  Histogram latency;
};

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void AddValue(MetricFamily* f, std::vector<ClientMetric::Label> labels,
              double value) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f->type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f->metric.push_back(std::move(m));
}

// One family per region field: (name, help, type, field).
struct RegionField {
  const char* name;
  const char* help;
  MetricType type;
  uint64_t RegionSnapshot::*field;
};

constexpr RegionField kRegionFields[] = {
    {"gpumig_region_size_bytes", "Size of the memory region.",
     MetricType::Gauge, &RegionSnapshot::size_bytes},
    {"gpumig_region_aperture_bytes",
     "CPU-visible bytes at the start of the region (SMEM: its size).",
     MetricType::Gauge, &RegionSnapshot::aperture_bytes},
    {"gpumig_region_allocated_bytes", "Bytes allocated in the region now.",
     MetricType::Gauge, &RegionSnapshot::allocated_bytes},
    {"gpumig_region_free_bytes", "Bytes free in the region now.",
     MetricType::Gauge, &RegionSnapshot::free_bytes},
    {"gpumig_region_largest_free_block_bytes",
     "Largest allocation the region could satisfy now without eviction.",
     MetricType::Gauge, &RegionSnapshot::largest_free_block_bytes},
    {"gpumig_region_objects", "Objects placed in the region now.",
     MetricType::Gauge, &RegionSnapshot::objects},
    {"gpumig_region_evictions_total",
     "Objects moved out of the region to make room or by Evict.",
     MetricType::Counter, &RegionSnapshot::evictions},
    {"gpumig_region_blits_total",
     "Copy-engine commands (clear, copy, fill, checksum) touching the "
     "region.",
     MetricType::Counter, &RegionSnapshot::blits},
    {"gpumig_region_blit_failures_total",
     "Copy-engine commands touching the region that failed or were skipped.",
     MetricType::Counter, &RegionSnapshot::blit_failures},
    {"gpumig_region_fallback_copies_total",
     "Failed copies the failsafe redid by CPU (content exact).",
     MetricType::Counter, &RegionSnapshot::fallback_copies},
    {"gpumig_region_fallback_clears_total",
     "Failed clears or fills the failsafe redid by CPU (content exact).",
     MetricType::Counter, &RegionSnapshot::fallback_clears},
    {"gpumig_region_unknown_state_marks_total",
     "Objects marked unknown state (content lost) while placed in the "
     "region.",
     MetricType::Counter, &RegionSnapshot::unknown_state_marks},
    {"gpumig_region_migrated_in_bytes_total",
     "Bytes copied into the region by migrations and evictions.",
     MetricType::Counter, &RegionSnapshot::bytes_migrated_in},
    {"gpumig_region_migrated_out_bytes_total",
     "Bytes copied out of the region by migrations and evictions.",
     MetricType::Counter, &RegionSnapshot::bytes_migrated_out},
};

// Checks "host:port" and returns the address civetweb should bind and the
// host part for bound_address().
absl::Status ParseListenAddress(absl::string_view address, std::string* bind,
                                std::string* host) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", address, "\": ", why,
                     " (expected host:port, e.g. 127.0.0.1:9464 or "
                     "[::1]:9464)"));
  };
  absl::StatusOr<HostPort> hp = SplitHostPort(address);
  if (!hp.ok()) {
    return bad(hp.status().message() == "no host"
                   ? "no host (a bare port would listen everywhere)"
                   : hp.status().message());
  }
  if (hp->bracketed) {
    in6_addr a6;
    if (inet_pton(AF_INET6, hp->host.c_str(), &a6) != 1) {
      return bad("not an IPv6 address");
    }
  } else {
    if (hp->host == "localhost") hp->host = "127.0.0.1";
    in_addr a4;
    if (inet_pton(AF_INET, hp->host.c_str(), &a4) != 1) {
      return bad("not an IPv4 address, [IPv6] or localhost");
    }
  }
  *bind = hp->ToString();
  *host = hp->bracketed ? absl::StrCat("[", hp->host, "]") : hp->host;
  return absl::OkStatus();
}

// Opens and closes one TCP connection to `bound` ("host:port", the host as
// ParseListenAddress wrote it); a wildcard host means its loopback.
void WakeAcceptLoop(const std::string& bound) {
  absl::StatusOr<HostPort> hp = SplitHostPort(bound);
  if (!hp.ok()) return;
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (hp->bracketed) {
    if (hp->host == "::") hp->host = "::1";
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(hp->port);
    if (inet_pton(AF_INET6, hp->host.c_str(), &a6->sin6_addr) != 1) return;
    len = sizeof(*a6);
  } else {
    if (hp->host == "0.0.0.0") hp->host = "127.0.0.1";
    auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(hp->port);
    if (inet_pton(AF_INET, hp->host.c_str(), &a4->sin_addr) != 1) return;
    len = sizeof(*a4);
  }
  const int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  connect(fd, reinterpret_cast<sockaddr*>(&addr), len);
  close(fd);
}

}  // namespace

absl::string_view GrpcCodeName(int code) { return StatusCodeName(code); }

// The collectable the Exposer scrapes; holds every pushed value.
class Metrics::State : public prometheus::Collectable {
 public:
  explicit State(const MetricsOptions& options)
      : version_(options.version),
        backend_(options.backend),
        start_time_(absl::Now()) {}

  void OnRpc(absl::string_view method, int code, absl::Duration latency)
      ABSL_LOCKS_EXCLUDED(mu_) {
    if (code < 0 || code >= kStatusCodeCount) {
      code = static_cast<int>(absl::StatusCode::kUnknown);
    }
    if (method.empty()) method = "unknown";
    MutexLock lock(&mu_);
    auto it = rpcs_.find(method);
    if (it == rpcs_.end()) {
      // The last slot is "other".
      if (rpcs_.size() >= kMaxRpcMethods - 1) method = "other";
      it = rpcs_.try_emplace(std::string(method)).first;
    }
    ++it->second.calls[code];
    it->second.latency.Observe(latency);
  }

  void OnFenceWait(absl::Duration waited) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    fence_wait_.Observe(waited);
  }

  void SetSource(SnapshotSource source) ABSL_LOCKS_EXCLUDED(source_mu_) {
    // Taking source_mu_ waits for a scrape that is calling the old source.
    MutexLock lock(&source_mu_);
    source_ = std::move(source);
  }

  std::vector<MetricFamily> Collect() const override {
    std::vector<MetricFamily> out;

    MetricFamily info = Family("gpumig_build_info",
                               "Always 1; the daemon's version and backend.",
                               MetricType::Gauge);
    AddValue(&info, {{"backend", backend_}, {"version", version_}}, 1);
    out.push_back(std::move(info));
    MetricFamily start = Family(
        "gpumig_start_time_seconds",
        "When the daemon started, Unix seconds. Objects do not survive a "
        "restart.",
        MetricType::Gauge);
    AddValue(&start, {},
             absl::ToDoubleSeconds(start_time_ - absl::UnixEpoch()));
    out.push_back(std::move(start));

    // Pushed values: copy under mu_, format outside it.
    std::vector<std::pair<std::string, MethodStats>> rpcs;
    Histogram fence_wait;
    {
      MutexLock lock(&mu_);
      rpcs.assign(rpcs_.begin(), rpcs_.end());
      fence_wait = fence_wait_;
    }
    std::sort(rpcs.begin(), rpcs.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    MetricFamily calls =
        Family("gpumig_rpcs_total", "Finished RPCs by method and gRPC code.",
               MetricType::Counter);
    MetricFamily durations =
        Family("gpumig_rpc_duration_seconds",
               "RPC latency by method, from the call's start to its status.",
               MetricType::Histogram);
    for (const auto& [method, stats] : rpcs) {
      for (int code = 0; code < kStatusCodeCount; ++code) {
        if (stats.calls[code] == 0) continue;
        AddValue(
            &calls,
            {{"code", std::string(GrpcCodeName(code))}, {"method", method}},
            static_cast<double>(stats.calls[code]));
      }
      durations.metric.push_back(stats.latency.ToMetric({{"method", method}}));
    }
    out.push_back(std::move(calls));
    out.push_back(std::move(durations));
    MetricFamily waits = Family(
        "gpumig_fence_wait_seconds",
        "How long callers blocked waiting for a fence (until its signal or "
        "the timeout).",
        MetricType::Histogram);
    waits.metric.push_back(fence_wait.ToMetric({}));
    out.push_back(std::move(waits));

    // Pulled values: the source runs under source_mu_ only.
    MutexLock lock(&source_mu_);
    if (source_ == nullptr) return out;
    const Snapshot snap = source_();
    for (const RegionField& field : kRegionFields) {
      MetricFamily f = Family(field.name, field.help, field.type);
      for (const RegionSnapshot& r : snap.regions) {
        AddValue(&f, {{"kind", r.kind}, {"region", r.name}},
                 static_cast<double>(r.*field.field));
      }
      out.push_back(std::move(f));
    }
    MetricFamily faults =
        Family("gpumig_faults_fired_total",
               "Injected faults that fired, by fault kind (FaultService).",
               MetricType::Counter);
    for (const FaultFiredSnapshot& f : snap.faults_fired) {
      AddValue(&faults, {{"fault", f.kind}}, static_cast<double>(f.fired));
    }
    out.push_back(std::move(faults));
    const struct {
      const char* name;
      const char* help;
      double value;
    } gauges[] = {
        {"gpumig_objects", "Live objects, every principal.",
         static_cast<double>(snap.objects)},
        {"gpumig_object_bytes", "Bytes of live objects, every principal.",
         static_cast<double>(snap.object_bytes)},
        {"gpumig_unknown_state_objects",
         "Live objects in unknown state (content lost; every access refused "
         "with DATA_LOSS until destroyed).",
         static_cast<double>(snap.unknown_state_objects)},
        {"gpumig_fences_pending", "Fences not yet signalled.",
         static_cast<double>(snap.fences_pending)},
        {"gpumig_watchers", "Open FenceService.Watch streams.",
         static_cast<double>(snap.watchers)},
        {"gpumig_engine_wedged",
         "1 while a WEDGE_ENGINE fault is active (health NOT_SERVING).",
         snap.engine_wedged ? 1.0 : 0.0},
        {"gpumig_shared_buffers",
         "Shared buffers registered now, every principal.",
         static_cast<double>(snap.shared_buffers)},
        {"gpumig_shared_buffer_bytes",
         "Bytes of registered shared buffers (mapped; cuda: page-locked).",
         static_cast<double>(snap.shared_buffer_bytes)},
        {"gpumig_shared_buffer_connections",
         "Open shared-buffer registration connections.",
         static_cast<double>(snap.shared_buffer_connections)},
    };
    for (const auto& g : gauges) {
      MetricFamily f = Family(g.name, g.help, MetricType::Gauge);
      AddValue(&f, {}, g.value);
      out.push_back(std::move(f));
    }
    {
      MetricFamily f =
          Family("gpumig_shared_buffer_registrations_total",
                 "Shared buffers registered since start.", MetricType::Counter);
      AddValue(&f, {}, static_cast<double>(snap.shared_buffer_registrations));
      out.push_back(std::move(f));
      MetricFamily r =
          Family("gpumig_shared_buffer_rejections_total",
                 "Shared-buffer registrations refused.", MetricType::Counter);
      AddValue(&r, {}, static_cast<double>(snap.shared_buffer_rejections));
      out.push_back(std::move(r));
      MetricFamily c =
          Family("gpumig_shared_buffer_copied_bytes_total",
                 "Bytes copied by WriteFromBuffer (direction=write) and "
                 "ReadToBuffer (direction=read).",
                 MetricType::Counter);
      AddValue(&c, {{"direction", "write"}},
               static_cast<double>(snap.shared_buffer_bytes_written));
      AddValue(&c, {{"direction", "read"}},
               static_cast<double>(snap.shared_buffer_bytes_read));
      out.push_back(std::move(c));
    }
    return out;
  }

 private:
  // Constant after construction.
  const std::string version_;
  const std::string backend_;
  const absl::Time start_time_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, MethodStats> rpcs_ ABSL_GUARDED_BY(mu_);
  Histogram fence_wait_ ABSL_GUARDED_BY(mu_);

  // Held while a scrape calls source_, so SetSource() can wait it out.
  mutable absl::Mutex source_mu_;
  SnapshotSource source_ ABSL_GUARDED_BY(source_mu_);
};

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Create(
    MetricsOptions options) {
  if (options.http_threads < 1) {
    return absl::InvalidArgumentError("metrics: http_threads must be >= 1");
  }
  auto state = std::make_shared<State>(options);
  if (options.listen_address.empty()) {
    return absl::WrapUnique(new Metrics(std::move(state), nullptr, 0, ""));
  }
  std::string bind, host;
  absl::Status parsed =
      ParseListenAddress(options.listen_address, &bind, &host);
  if (!parsed.ok()) return parsed;

  // prometheus-cpp reports a failed bind by throwing (civetweb's
  // CivetException); this is the one place gpumig catches an exception.
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
        "listening_ports", bind,                            //
        "num_threads", absl::StrCat(options.http_threads),  //
        "request_timeout_ms", "10000",                      //
        "enable_keep_alive", "no",                          //
    });
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(
        "metrics: cannot listen on ", options.listen_address, ": ", e.what()));
  }
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty() || ports[0] <= 0) {
    return absl::UnavailableError(absl::StrCat("metrics: cannot listen on ",
                                               options.listen_address,
                                               ": no port bound"));
  }
  exposer->RegisterCollectable(state);
  const int port = ports[0];
  return absl::WrapUnique(new Metrics(std::move(state), std::move(exposer),
                                      port, absl::StrCat(host, ":", port)));
}

Metrics::Metrics(std::shared_ptr<State> state,
                 std::unique_ptr<prometheus::Exposer> exposer, int port,
                 std::string bound_address)
    : state_(std::move(state)),
      port_(port),
      bound_address_(std::move(bound_address)),
      exposer_(std::move(exposer)) {}

Metrics::~Metrics() { Stop(); }

void Metrics::Stop() {
  std::unique_ptr<prometheus::Exposer> exposer;
  {
    MutexLock lock(&stop_mu_);
    exposer = std::move(exposer_);
  }
  if (exposer == nullptr) return;
  // civetweb's stop joins its threads, so no scrape runs after this. Its
  // accept thread only sees the stop flag when poll() returns, which without
  // a connection takes up to its fixed 2 s quantum; connecting wakes it.
  // Purely a speed-up: the stop is correct without it.
  absl::Notification stopped;
  std::thread waker([this, &stopped] {
    do {
      WakeAcceptLoop(bound_address_);
    } while (!stopped.WaitForNotificationWithTimeout(absl::Milliseconds(20)));
  });
  exposer.reset();
  stopped.Notify();
  waker.join();
}

void Metrics::OnRpc(absl::string_view method, int grpc_code,
                    absl::Duration latency) {
  state_->OnRpc(method, grpc_code, latency);
}

void Metrics::OnFenceWait(absl::Duration waited) {
  state_->OnFenceWait(waited);
}

void Metrics::SetSnapshotSource(SnapshotSource source) {
  state_->SetSource(std::move(source));
}

std::string Metrics::Render() const {
  return prometheus::TextSerializer().Serialize(state_->Collect());
}

}  // namespace daemon
}  // namespace gpumig
