// Daemon: gpumigd put together -- the MemoryManager on the configured
// device, the gRPC server with the five gpumig.v1 services, the
// grpc.health.v1 health service and server reflection, the unix listener
// (SO_PEERCRED identities) and the optional mutual-TLS TCP listener, and
// systemd notification.
//
// Health: "" is SERVING while the daemon runs; "gpumig.v1.ObjectService" is
// NOT_SERVING while a WEDGE_ENGINE fault is active (re-evaluated on every
// fault change and every 500 ms). Both go NOT_SERVING at shutdown.
//
// Shutdown (Shutdown(), on SIGTERM/SIGINT from main): stop accepting on the
// unix socket; health NOT_SERVING; new calls get UNAVAILABLE and Watch
// streams end; in-flight fences get up to shutdown_grace to signal (waits on
// them return their outcome); the gRPC server then gets 500 ms more for
// calls still running before they are cancelled; then the manager is
// destroyed. The grpc::Server object itself is destroyed with the Daemon;
// gpumigd's main exits right after Shutdown() instead, because that
// destructor can wait for seconds until clients drop their connections.
//
// Thread-safe.
#ifndef GPUMIG_DAEMON_DAEMON_H_
#define GPUMIG_DAEMON_DAEMON_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "core/manager/memory_manager.h"
#include "core/shm/registration_server.h"
#include "core/shm/shared_buffer_registry.h"
#include "daemon/auth/identity.h"
#include "daemon/auth/unix_listener.h"
#include "daemon/config/config.h"
#include "daemon/metrics/metrics.h"
#include "daemon/services/daemon_service.h"
#include "daemon/services/fault_service.h"
#include "daemon/services/fence_service.h"
#include "daemon/services/object_service.h"
#include "daemon/services/region_service.h"
#include "daemon/services/rpc_env.h"
#include "grpcpp/server.h"

namespace gpumig {
namespace daemon {

inline constexpr char kObjectServiceName[] = "gpumig.v1.ObjectService";

class Daemon {
 public:
  // Builds everything and starts serving; logs the listeners and tells
  // systemd READY=1. Errors: the device's (UNAVAILABLE for backend cuda),
  // the listener's, INTERNAL if the gRPC server cannot start (e.g. the TCP
  // address cannot be bound or the TLS files are unreadable).
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(Config config);
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  // Shuts down if Shutdown() was not called.
  ~Daemon();

  // Drains and stops (see the file comment). `reason` goes to the log.
  // Idempotent.
  void Shutdown(const std::string& reason) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  explicit Daemon(Config config);
  absl::Status Init();
  void UpdateHealth() ABSL_LOCKS_EXCLUDED(health_mu_);
  void Housekeeping();

  const Config config_;

  std::unique_ptr<MemoryManager> manager_;
  // Shared buffers (nullptr: the registration socket is off). Destroyed
  // after the services; the server stops in Shutdown after server_->Wait().
  std::unique_ptr<shm::SharedBufferRegistry> shm_registry_;
  std::unique_ptr<shm::RegistrationServer> shm_server_;
  // After manager_: destroyed before it (scrapes read the manager).
  std::unique_ptr<Metrics> metrics_;
  uint64_t outcome_sink_ = 0;  // FenceRegistry subscription (event logs)
  ConnectionTable connections_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<RpcEnv> env_;
  std::unique_ptr<ObjectService> object_service_;
  std::unique_ptr<FenceService> fence_service_;
  std::unique_ptr<RegionService> region_service_;
  std::unique_ptr<FaultService> fault_service_;
  std::unique_ptr<DaemonService> daemon_service_;
  std::unique_ptr<UnixListener> listener_;
  std::unique_ptr<grpc::Server> server_;
  std::thread housekeeping_;
  absl::Notification stop_housekeeping_;

  absl::Mutex health_mu_;
  bool health_known_ ABSL_GUARDED_BY(health_mu_) = false;
  bool wedged_ ABSL_GUARDED_BY(health_mu_) = false;
  bool health_down_ ABSL_GUARDED_BY(health_mu_) = false;

  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_DAEMON_H_
