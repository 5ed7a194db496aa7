#include "daemon/daemon.h"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/auth/identity.h"
#include "daemon/device_factory.h"
#include "daemon/log.h"
#include "daemon/metrics/manager_snapshot.h"
#include "daemon/services/self_test.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/server_posix.h"

namespace gpumig {
namespace daemon {
namespace {

constexpr absl::Duration kHealthTick = absl::Milliseconds(500);

absl::StatusOr<std::string> ReadFile(const std::string& field,
                                     const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ": cannot read ", path));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Daemon::Daemon(Config config) : config_(std::move(config)) {}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(Config config) {
  std::unique_ptr<Daemon> d(new Daemon(std::move(config)));
  absl::Status s = d->Init();
  if (!s.ok()) {
    // Tear down whatever started; do not log a drain for a daemon that
    // never served.
    absl::MutexLock lock(&d->mu_);
    d->shut_down_ = true;
    if (d->listener_ != nullptr) d->listener_->Stop();
    if (d->shm_server_ != nullptr) d->shm_server_->Stop();
    if (d->server_ != nullptr) {
      d->server_->Shutdown(std::chrono::system_clock::now());
      d->server_->Wait();
    }
    d->stop_housekeeping_.Notify();
    if (d->housekeeping_.joinable()) d->housekeeping_.join();
    return s;
  }
  return d;
}

absl::Status Daemon::Init() {
  // The engine and its memory.
  auto faults = std::make_unique<FaultInjector>();
  absl::StatusOr<std::unique_ptr<Device>> device =
      MakeDevice(config_, faults.get());
  if (!device.ok()) return device.status();
  ManagerOptions options;
  options.work_threads = static_cast<int>(config_.work_threads);
  options.fence_history = config_.fence_history;
  options.default_quota = config_.default_quota;
  options.quotas = config_.quotas;
  options.page_bytes = kPageBytes;  // The API's page (GetInfo's page_bytes).
  options.quotas[kSelfTestPrincipal] = 0;  // The self-test is not quota-bound.
  absl::StatusOr<std::unique_ptr<MemoryManager>> manager =
      MemoryManager::Create(std::move(faults), *std::move(device),
                            std::move(options));
  if (!manager.ok()) return manager.status();
  manager_ = *std::move(manager);

  // Identity and services.
  auth_ =
      std::make_unique<Authenticator>(&connections_, config_.admin_subjects);
  ServiceOptions service_options;
  service_options.fault_injection_enabled = config_.enable_fault_injection;
  service_options.fence_history = config_.fence_history;
  env_ = std::make_unique<RpcEnv>(manager_.get(), auth_.get(), service_options);
  object_service_ = std::make_unique<ObjectService>(env_.get());
  fence_service_ = std::make_unique<FenceService>(env_.get());
  region_service_ = std::make_unique<RegionService>(env_.get());
  fault_service_ = std::make_unique<FaultService>(env_.get());
  daemon_service_ = std::make_unique<DaemonService>(env_.get());

  // The unix socket first: a bad path fails before anything serves.
  UnixListenerOptions ux;
  ux.path = config_.socket_path;
  ux.mode = config_.socket_mode;
  ux.group = config_.socket_group;
  ux.admin_group = config_.admin_group;
  absl::StatusOr<std::unique_ptr<UnixListener>> listener =
      UnixListener::Create(std::move(ux));
  if (!listener.ok()) return listener.status();
  listener_ = *std::move(listener);

  // The shared-buffer registration socket, beside the gRPC one.
  if (!config_.shm_socket_path.empty()) {
    shm::ShmLimits limits;
    limits.max_buffers_per_principal = config_.shm_max_buffers_per_principal;
    limits.max_bytes_per_principal = config_.shm_max_bytes_per_principal;
    limits.max_total_bytes = config_.shm_max_total_bytes;
    shm_registry_ = std::make_unique<shm::SharedBufferRegistry>(
        limits, SharedBufferPinHooks(manager_->device()));
    env_->set_shared_buffers(shm_registry_.get(), config_.shm_socket_path);
    shm_server_ =
        std::make_unique<shm::RegistrationServer>(shm_registry_.get());
    gid_t gid = static_cast<gid_t>(-1);
    if (!config_.socket_group.empty()) {
      // The same lookup as the gRPC socket's: never a silent fallback.
      absl::StatusOr<gid_t> g = LookupGroup(config_.socket_group);
      if (!g.ok()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "listeners.unix_socket.group: ", g.status().message(),
            " (for the shared-buffer socket ", config_.shm_socket_path, ")"));
      }
      gid = *g;
    }
    absl::Status s =
        shm_server_->Start(config_.shm_socket_path, config_.socket_mode, gid);
    if (!s.ok()) return s;
    Log(LogLevel::kInfo, "listening")
        .Kv("shared_buffers", config_.shm_socket_path);
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Idle sync-server pollers wake this often; it bounds how long Shutdown
  // waits for them (gRPC's default is 10 s).
  builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::CQ_TIMEOUT_MSEC, 100);
  builder.RegisterService(object_service_.get());
  builder.RegisterService(fence_service_.get());
  builder.RegisterService(region_service_.get());
  builder.RegisterService(fault_service_.get());
  builder.RegisterService(daemon_service_.get());
  int tcp_port = 0;
  if (!config_.tcp_address.empty()) {
    absl::StatusOr<std::string> cert =
        ReadFile("listeners.tcp.tls_cert", config_.tls_cert);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key =
        ReadFile("listeners.tcp.tls_key", config_.tls_key);
    if (!key.ok()) return key.status();
    absl::StatusOr<std::string> ca =
        ReadFile("listeners.tcp.tls_client_ca", config_.tls_client_ca);
    if (!ca.ok()) return ca.status();
    grpc::SslServerCredentialsOptions ssl(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = *ca;
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    builder.AddListeningPort(config_.tcp_address,
                             grpc::SslServerCredentials(ssl), &tcp_port);
  }
  server_ = builder.BuildAndStart();
  if (server_ == nullptr) {
    return absl::InternalError(
        "the gRPC server did not start (is the TCP address free and are the "
        "TLS files valid PEM?)");
  }
  if (!config_.tcp_address.empty() && tcp_port == 0) {
    return absl::InternalError(absl::StrCat(
        "listeners.tcp.address: cannot listen on ", config_.tcp_address));
  }

  // Health, then the first connections.
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health != nullptr) health->SetServingStatus("", true);
  UpdateHealth();
  env_->SetFaultsChangedHook([this] { UpdateHealth(); });

  // Metrics. An endpoint that cannot bind (port taken) is logged and the
  // daemon serves without it, rather than refusing to start.
  if (!config_.metrics_address.empty()) {
    MetricsOptions mo;
    mo.listen_address = config_.metrics_address;
    mo.version = kVersion;
    mo.backend = config_.backend;
    absl::StatusOr<std::unique_ptr<Metrics>> metrics =
        Metrics::Create(std::move(mo));
    if (metrics.ok()) {
      metrics_ = *std::move(metrics);
      metrics_->SetSnapshotSource([mm = manager_.get(), env = env_.get()] {
        Snapshot s = TakeSnapshot(*mm);
        s.watchers = env->watchers();  // Watch streams, not internal sinks.
        if (const shm::SharedBufferRegistry* r = env->shared_buffers()) {
          const shm::ShmStats b = r->stats();
          s.shared_buffers = b.buffers;
          s.shared_buffer_bytes = b.bytes;
          s.shared_buffer_connections = b.connections;
          s.shared_buffer_registrations = b.registrations;
          s.shared_buffer_rejections = b.rejections;
          s.shared_buffer_bytes_written = b.bytes_written;
          s.shared_buffer_bytes_read = b.bytes_read;
        }
        return s;
      });
      Metrics* m = metrics_.get();
      env_->stats().AddObserver([m](absl::string_view method,
                                    absl::StatusCode code,
                                    absl::Duration latency) {
        m->OnRpc(method, static_cast<int>(code), latency);
      });
      env_->SetFenceWaitObserver([m](absl::Duration d) { m->OnFenceWait(d); });
      Log(LogLevel::kInfo, "listening")
          .Kv("metrics", metrics_->bound_address());
    } else {
      Log(LogLevel::kWarn, "metrics_unavailable")
          .Kv("address", config_.metrics_address)
          .Kv("error", metrics.status().ToString());
    }
  }

  // One log line per failsafe decision that matters: a blit failure rescued
  // by a fallback, or an object marked unknown-state. The sink runs on the
  // signalling thread: it formats one line and returns.
  outcome_sink_ = manager_->fences().Subscribe([](const FenceInfo& f) {
    switch (f.outcome) {
      case MoveOutcome::kFallbackCopy:
      case MoveOutcome::kFallbackClear:
      case MoveOutcome::kFallbackDeviceCopy:
      case MoveOutcome::kFallbackDeviceClear:
        Log(LogLevel::kWarn, "blit_failed")
            .Kv("fence", f.id)
            .Kv("kind", FenceKindName(f.kind))
            .Kv("object", f.object_id)
            .Kv("src", f.src_region.empty() ? "-" : f.src_region)
            .Kv("dst", f.dst_region)
            .Kv("engine_error", f.engine_error.ToString())
            .Kv("fallback", MoveOutcomeName(f.outcome));
        break;
      case MoveOutcome::kUnknownState:
        Log(LogLevel::kError, "object_unknown_state")
            .Kv("fence", f.id)
            .Kv("kind", FenceKindName(f.kind))
            .Kv("object", f.object_id)
            .Kv("owner", f.owner)
            .Kv("dst", f.dst_region)
            .Kv("error", f.error.ToString());
        break;
      default:
        break;
    }
  });
  // Logged before the unix socket accepts, so a client that got in can
  // read the TCP port from the log.
  if (tcp_port != 0) {
    const std::string host =
        config_.tcp_address.substr(0, config_.tcp_address.rfind(':'));
    Log(LogLevel::kInfo, "listening")
        .Kv("tcp", absl::StrCat(host, ":", tcp_port))
        .Kv("tls", "mutual");
  }
  Log(LogLevel::kInfo, "listening").Kv("socket", config_.socket_path);
  grpc::Server* server = server_.get();
  absl::Status listening = listener_->Start(&connections_, [server](int fd) {
    grpc::AddInsecureChannelFromFd(server, fd);
  });
  if (!listening.ok()) return listening;
  housekeeping_ = std::thread([this] { Housekeeping(); });
  const std::string status = absl::StrCat(
      "serving on ", config_.socket_path,
      tcp_port != 0 ? absl::StrCat(" and tcp port ", tcp_port) : std::string());
  sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str());
  return absl::OkStatus();
}

void Daemon::UpdateHealth() {
  const bool wedged = manager_->faults().AnyWedgeActive();
  absl::MutexLock lock(&health_mu_);
  if (health_down_ || (health_known_ && wedged == wedged_)) return;
  grpc::HealthCheckServiceInterface* health =
      server_ != nullptr ? server_->GetHealthCheckService() : nullptr;
  if (health == nullptr) return;
  health->SetServingStatus(kObjectServiceName, !wedged);
  if (health_known_) {
    Log(wedged ? LogLevel::kWarn : LogLevel::kInfo, "health")
        .Kv("service", kObjectServiceName)
        .Kv("status", wedged ? "NOT_SERVING" : "SERVING")
        .Kv("reason", wedged ? "copy engine wedged" : "engine recovered");
  }
  health_known_ = true;
  wedged_ = wedged;
}

void Daemon::Housekeeping() {
  uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
  absl::Duration tick = kHealthTick;
  if (watchdog) tick = std::min(tick, absl::Microseconds(watchdog_usec) / 2);
  while (!stop_housekeeping_.WaitForNotificationWithTimeout(tick)) {
    UpdateHealth();
    if (watchdog) sd_notify(0, "WATCHDOG=1");
  }
}

void Daemon::Shutdown(const std::string& reason) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  shut_down_ = true;
  const absl::Time start = absl::Now();
  Log(LogLevel::kInfo, "shutdown")
      .Kv("reason", reason)
      .Kv("grace_ms", absl::ToInt64Milliseconds(config_.shutdown_grace));
  sd_notify(0, "STOPPING=1\nSTATUS=draining");

  listener_->Stop();  // No new connections.
  if (shm_registry_ != nullptr) shm_registry_->Shutdown();  // No new buffers.
  {
    absl::MutexLock health_lock(&health_mu_);
    health_down_ = true;
    if (grpc::HealthCheckServiceInterface* h =
            server_->GetHealthCheckService()) {
      h->Shutdown();  // Everything NOT_SERVING from now on.
    }
  }
  env_->BeginDrain();  // New calls: UNAVAILABLE; Watch streams end.
  const bool drained = manager_->Shutdown(start + config_.shutdown_grace);
  const absl::Time fences_done = absl::Now();
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(500));
  server_->Wait();
  // No WriteFromBuffer/ReadToBuffer runs now: end every shared buffer.
  if (shm_server_ != nullptr) shm_server_->Stop();
  Log(LogLevel::kDebug, "shutdown_steps")
      .Kv("fences_ms", absl::ToInt64Milliseconds(fences_done - start))
      .Kv("server_ms", absl::ToInt64Milliseconds(absl::Now() - fences_done));
  stop_housekeeping_.Notify();
  if (housekeeping_.joinable()) housekeeping_.join();
  const ManagerStats stats = manager_->Stats();
  manager_->fences().Unsubscribe(outcome_sink_);
  if (metrics_ != nullptr) {
    metrics_->SetSnapshotSource(nullptr);  // No scrape reads the manager now.
    metrics_->Stop();
  }
  // No handler runs any more (Shutdown cancelled what was left and Wait
  // returned), so the manager can go while the server object stays: its
  // destructor may wait for clients to drop their connections.
  manager_.reset();  // Engine down, failsafe works drained, objects dropped.
  Log(LogLevel::kInfo, "shutdown_complete")
      .Kv("fences_drained", drained)
      .Kv("fences_pending", stats.fences_pending)
      .Kv("objects_dropped", stats.objects)
      .Kv("duration_ms", absl::ToInt64Milliseconds(absl::Now() - start));
}

Daemon::~Daemon() { Shutdown("destroyed"); }

}  // namespace daemon
}  // namespace gpumig
