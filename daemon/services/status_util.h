// The one place gpumigd turns an absl::Status into a grpc::Status, and the
// per-method RPC counters behind DaemonService.GetStats.
//
// Mapping: one to one by code (absl::StatusCode and grpc::StatusCode share
// the google.rpc.Code numbering). PERMISSION_DENIED always carries the fixed
// message "permission denied", whatever the core said, so no caller learns
// anything about an identifier it does not own.
//
// Thread-safe.
#ifndef GPUMIG_DAEMON_SERVICES_STATUS_UTIL_H_
#define GPUMIG_DAEMON_SERVICES_STATUS_UTIL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"

namespace gpumig {
namespace daemon {

grpc::Status ToGrpcStatus(const absl::Status& status);

// INVALID_ARGUMENT "<field>: <problem>".
absl::Status FieldError(absl::string_view field, absl::string_view problem);
// OUT_OF_RANGE "<field>: <problem>".
absl::Status RangeError(absl::string_view field, absl::string_view problem);
// PERMISSION_DENIED "permission denied".
absl::Status PermissionDenied();

// Per-method call and error counts. Observers (metrics exporters) see every
// finished call too.
class RpcStats {
 public:
  struct MethodStats {
    std::string method;
    uint64_t calls = 0;
    uint64_t errors = 0;
  };
  // Called on the RPC's thread after each call; must not block.
  using Observer = std::function<void(
      absl::string_view method, absl::StatusCode code, absl::Duration latency)>;

  void Record(absl::string_view method, absl::StatusCode code,
              absl::Duration latency) ABSL_LOCKS_EXCLUDED(mu_);
  // Methods called at least once, by name.
  std::vector<MethodStats> Snapshot() const ABSL_LOCKS_EXCLUDED(mu_);
  void AddObserver(Observer observer) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, MethodStats> methods_ ABSL_GUARDED_BY(mu_);
  std::vector<Observer> observers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_SERVICES_STATUS_UTIL_H_
