// DaemonService: Ping, GetInfo, GetStats and the admin-only SelfTest (one at
// a time; see self_test.h).
//
// Thread-safe.
#ifndef GPUMIG_DAEMON_SERVICES_DAEMON_SERVICE_H_
#define GPUMIG_DAEMON_SERVICES_DAEMON_SERVICE_H_

#include <atomic>

#include "daemon/services/rpc_env.h"
#include "gpumig/v1/daemon.grpc.pb.h"

namespace gpumig {
namespace daemon {

class DaemonService final : public v1::DaemonService::Service {
 public:
  explicit DaemonService(RpcEnv* env) : env_(env) {}

  grpc::Status Ping(grpc::ServerContext* ctx, const v1::PingRequest* req,
                    v1::PingResponse* resp) override;
  grpc::Status GetInfo(grpc::ServerContext* ctx, const v1::GetInfoRequest* req,
                       v1::GetInfoResponse* resp) override;
  grpc::Status GetStats(grpc::ServerContext* ctx,
                        const v1::GetStatsRequest* req,
                        v1::GetStatsResponse* resp) override;
  grpc::Status SelfTest(grpc::ServerContext* ctx,
                        const v1::SelfTestRequest* req,
                        v1::SelfTestResponse* resp) override;

 private:
  RpcEnv* const env_;
  std::atomic<bool> self_test_running_{false};
};

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_SERVICES_DAEMON_SERVICE_H_
