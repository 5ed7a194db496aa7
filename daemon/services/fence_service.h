// FenceService: fence status, waits, and the Watch event stream.
//
// Watch: each stream subscribes a sink to the FenceRegistry. The sink runs
// on a fence-signalling thread and must never block: it filters, converts
// and pushes into a bounded per-stream queue (ServiceOptions::
// watch_queue_events); when the queue is full it counts the event as
// dropped. The stream's own thread drains the queue, sends the events, and
// after them one DROPPED event with the count. Non-admins only ever see
// their own objects' fences. A stream ends OK once its filtered object is
// destroyed, UNAVAILABLE when the daemon shuts down, CANCELLED when the
// client goes away.
//
// Thread-safe.
#ifndef GPUMIG_DAEMON_SERVICES_FENCE_SERVICE_H_
#define GPUMIG_DAEMON_SERVICES_FENCE_SERVICE_H_

#include "daemon/services/rpc_env.h"
#include "gpumig/v1/fences.grpc.pb.h"

namespace gpumig {
namespace daemon {

class FenceService final : public v1::FenceService::Service {
 public:
  explicit FenceService(RpcEnv* env) : env_(env) {}

  grpc::Status Get(grpc::ServerContext* ctx, const v1::GetFenceRequest* req,
                   v1::FenceStatus* resp) override;
  grpc::Status Wait(grpc::ServerContext* ctx, const v1::WaitFenceRequest* req,
                    v1::FenceStatus* resp) override;
  grpc::Status Watch(grpc::ServerContext* ctx, const v1::WatchRequest* req,
                     grpc::ServerWriter<v1::Event>* writer) override;

 private:
  RpcEnv* const env_;
};

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_SERVICES_FENCE_SERVICE_H_
