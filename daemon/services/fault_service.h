// FaultService: fault injection for test rigs. Admins only
// (PERMISSION_DENIED, checked first), and only when the daemon was started
// with fault injection enabled (FAILED_PRECONDITION). Every change is logged
// and re-evaluates health (a wedge makes ObjectService NOT_SERVING).
//
// Thread-safe.
#ifndef GPUMIG_DAEMON_SERVICES_FAULT_SERVICE_H_
#define GPUMIG_DAEMON_SERVICES_FAULT_SERVICE_H_

#include <cstdint>

#include "daemon/services/rpc_env.h"
#include "gpumig/v1/faults.grpc.pb.h"

namespace gpumig {
namespace daemon {

class FaultService final : public v1::FaultService::Service {
 public:
  explicit FaultService(RpcEnv* env) : env_(env) {}

  grpc::Status Inject(grpc::ServerContext* ctx,
                      const v1::InjectFaultRequest* req,
                      v1::Fault* resp) override;
  grpc::Status Clear(grpc::ServerContext* ctx,
                     const v1::ClearFaultsRequest* req,
                     v1::ClearFaultsResponse* resp) override;
  grpc::Status List(grpc::ServerContext* ctx, const v1::ListFaultsRequest* req,
                    v1::ListFaultsResponse* resp) override;

 private:
  // PERMISSION_DENIED, then FAILED_PRECONDITION, as the API orders them.
  absl::Status CheckAllowed(const Principal& who) const;

  RpcEnv* const env_;
};

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_SERVICES_FAULT_SERVICE_H_
