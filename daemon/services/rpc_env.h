// RpcEnv: what every gpumigd service shares -- the MemoryManager, the
// Authenticator, the RPC counters, the drain switch -- and Run(), the
// wrapper every RPC method body goes through:
//
//   1. refuse with UNAVAILABLE once the daemon is draining (shutdown);
//   2. resolve the caller's Principal (UNAUTHENTICATED if impossible);
//   3. run the body, which returns an absl::Status;
//   4. convert it to a grpc::Status in one place (ToGrpcStatus), count it
//      (RpcStats) and log it.
//
// Thread-safe. Outlives the gRPC server it serves.
#ifndef GPUMIG_DAEMON_SERVICES_RPC_ENV_H_
#define GPUMIG_DAEMON_SERVICES_RPC_ENV_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/manager/memory_manager.h"
#include "core/shm/shared_buffer_registry.h"
#include "daemon/auth/identity.h"
#include "daemon/services/status_util.h"
#include "grpcpp/server_context.h"

namespace gpumig {
namespace daemon {

// Protocol limits (v1): reported by GetInfo and enforced by the services.
inline constexpr uint32_t kMaxChunkBytes = 1 << 20;
inline constexpr uint32_t kPageBytes = 4096;
inline constexpr uint32_t kMaxListPageSize = 1000;
inline constexpr char kVersion[] = "gpumigd 0.1.0";

struct ServiceOptions {
  bool fault_injection_enabled = false;
  uint64_t fence_history = 4096;
  // Concurrent Watch streams, and events queued per stream before dropping.
  int max_watchers = 64;
  size_t watch_queue_events = 1024;
  int max_faults = 64;
};

class RpcEnv {
 public:
  // Who a call's caller is (UNAUTHENTICATED if nobody). Must be thread-safe.
  using PrincipalResolver =
      std::function<absl::StatusOr<Principal>(const grpc::ServerContext&)>;

  // The daemon's: `auth` resolves callers from the connection.
  RpcEnv(MemoryManager* manager, const Authenticator* auth,
         ServiceOptions options);
  // In-process tests: `resolve` says who each call is (e.g. from metadata).
  RpcEnv(MemoryManager* manager, PrincipalResolver resolve,
         ServiceOptions options);
  RpcEnv(const RpcEnv&) = delete;
  RpcEnv& operator=(const RpcEnv&) = delete;

  using Body = absl::FunctionRef<absl::Status(const Principal&)>;
  // Runs one RPC method (see the file comment). `method` is the full name,
  // e.g. "/gpumig.v1.ObjectService/Create".
  grpc::Status Run(absl::string_view method, grpc::ServerContext* ctx,
                   Body body);

  MemoryManager& manager() { return *manager_; }
  const ServiceOptions& options() const { return options_; }
  RpcStats& stats() { return stats_; }
  absl::Time start_time() const { return start_time_; }

  // Shutdown: new calls get UNAVAILABLE; streams and waits end.
  void BeginDrain() { draining_.store(true, std::memory_order_release); }
  bool draining() const { return draining_.load(std::memory_order_acquire); }

  // Called after faults are injected or cleared (health follows the wedge).
  void SetFaultsChangedHook(std::function<void()> hook)
      ABSL_LOCKS_EXCLUDED(hook_mu_);
  void FaultsChanged() ABSL_LOCKS_EXCLUDED(hook_mu_);

  // Called after each fence wait with how long it took (metrics). Set before
  // serving; must not block.
  void SetFenceWaitObserver(std::function<void(absl::Duration)> observer) {
    fence_wait_observer_ = std::move(observer);
  }

  // The shared-buffer registry (nullptr: no registration socket). Set
  // before serving.
  void set_shared_buffers(shm::SharedBufferRegistry* r, std::string socket) {
    shared_buffers_ = r;
    shared_buffer_socket_ = std::move(socket);
  }
  shm::SharedBufferRegistry* shared_buffers() const { return shared_buffers_; }
  const std::string& shared_buffer_socket() const {
    return shared_buffer_socket_;
  }

  // Watch stream slots. TryAddWatcher is false at max_watchers.
  bool TryAddWatcher();
  void RemoveWatcher();
  // Open Watch streams (the daemon's own registry sinks are not counted).
  int watchers() const { return watchers_.load(std::memory_order_relaxed); }

  // The RPC's deadline (InfiniteFuture if none), at most `cap`.
  static absl::Time Deadline(const grpc::ServerContext& ctx,
                             absl::Time cap = absl::InfiniteFuture());

  // Waits for a fence the caller may see (checked through the manager) to
  // signal, until `deadline`, giving up early if the call is cancelled or
  // the daemon stops for good. DEADLINE_EXCEEDED if it does not signal in
  // time; CANCELLED if the client went away. A wait in flight when the
  // daemon starts draining goes on: shutdown lets in-flight fences finish.
  absl::StatusOr<FenceInfo> WaitForFence(const Principal& who,
                                         uint64_t fence_id, absl::Time deadline,
                                         grpc::ServerContext* ctx);

  // The object `id` for a content operation (Read, Write, Exec, Pin):
  // PERMISSION_DENIED unless the caller owns it (admins included),
  // DATA_LOSS if it is in unknown state, NOT_FOUND if there is none.
  absl::StatusOr<ObjectInfo> OwnedObject(const Principal& who, uint64_t id);

 private:
  MemoryManager* const manager_;
  const PrincipalResolver resolve_;
  const ServiceOptions options_;
  const absl::Time start_time_;
  RpcStats stats_;
  std::atomic<bool> draining_{false};
  std::atomic<int> watchers_{0};
  std::function<void(absl::Duration)> fence_wait_observer_;  // Set once.
  shm::SharedBufferRegistry* shared_buffers_ = nullptr;      // Set once.
  std::string shared_buffer_socket_;                         // Set once.

  absl::Mutex hook_mu_;
  std::function<void()> faults_changed_ ABSL_GUARDED_BY(hook_mu_);
};

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_SERVICES_RPC_ENV_H_
