// RegionService: region occupancy for everyone; Evict for admins.
// Thread-safe.
#ifndef GPUMIG_DAEMON_SERVICES_REGION_SERVICE_H_
#define GPUMIG_DAEMON_SERVICES_REGION_SERVICE_H_

#include "daemon/services/rpc_env.h"
#include "gpumig/v1/regions.grpc.pb.h"

namespace gpumig {
namespace daemon {

class RegionService final : public v1::RegionService::Service {
 public:
  explicit RegionService(RpcEnv* env) : env_(env) {}

  grpc::Status List(grpc::ServerContext* ctx, const v1::ListRegionsRequest* req,
                    v1::ListRegionsResponse* resp) override;
  grpc::Status Get(grpc::ServerContext* ctx, const v1::GetRegionRequest* req,
                   v1::Region* resp) override;
  grpc::Status Evict(grpc::ServerContext* ctx,
                     const v1::EvictRegionRequest* req,
                     v1::EvictRegionResponse* resp) override;

 private:
  RpcEnv* const env_;
};

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_SERVICES_REGION_SERVICE_H_
