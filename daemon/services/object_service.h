// ObjectService: gpumig.v1.ObjectService over MemoryManager. Validates every
// request field (INVALID_ARGUMENT naming the field, before anything
// changes), converts, calls the manager. Write and Read stream in chunks of
// at most 1 MiB, so objects of any size round-trip under gRPC's 4 MiB
// message limit.
//
// Thread-safe (stateless beyond RpcEnv).
#ifndef GPUMIG_DAEMON_SERVICES_OBJECT_SERVICE_H_
#define GPUMIG_DAEMON_SERVICES_OBJECT_SERVICE_H_

#include "daemon/services/rpc_env.h"
#include "gpumig/v1/objects.grpc.pb.h"

namespace gpumig {
namespace daemon {

class ObjectService final : public v1::ObjectService::Service {
 public:
  explicit ObjectService(RpcEnv* env) : env_(env) {}

  grpc::Status Create(grpc::ServerContext* ctx,
                      const v1::CreateObjectRequest* req,
                      v1::CreateObjectResponse* resp) override;
  grpc::Status Destroy(grpc::ServerContext* ctx,
                       const v1::DestroyObjectRequest* req,
                       v1::DestroyObjectResponse* resp) override;
  grpc::Status Get(grpc::ServerContext* ctx, const v1::GetObjectRequest* req,
                   v1::Object* resp) override;
  grpc::Status List(grpc::ServerContext* ctx, const v1::ListObjectsRequest* req,
                    v1::ListObjectsResponse* resp) override;
  grpc::Status Write(grpc::ServerContext* ctx,
                     grpc::ServerReader<v1::WriteRequest>* reader,
                     v1::WriteResponse* resp) override;
  grpc::Status Read(grpc::ServerContext* ctx, const v1::ReadRequest* req,
                    grpc::ServerWriter<v1::ReadResponse>* writer) override;
  // object_service_shm.cc.
  grpc::Status WriteFromBuffer(grpc::ServerContext* ctx,
                               const v1::WriteFromBufferRequest* req,
                               v1::WriteFromBufferResponse* resp) override;
  grpc::Status ReadToBuffer(grpc::ServerContext* ctx,
                            const v1::ReadToBufferRequest* req,
                            v1::ReadToBufferResponse* resp) override;
  grpc::Status Migrate(grpc::ServerContext* ctx,
                       const v1::MigrateObjectRequest* req,
                       v1::MigrateObjectResponse* resp) override;
  grpc::Status Pin(grpc::ServerContext* ctx, const v1::PinObjectRequest* req,
                   v1::PinObjectResponse* resp) override;
  grpc::Status Unpin(grpc::ServerContext* ctx,
                     const v1::UnpinObjectRequest* req,
                     v1::UnpinObjectResponse* resp) override;
  grpc::Status Exec(grpc::ServerContext* ctx, const v1::ExecRequest* req,
                    v1::ExecResponse* resp) override;
  // Batches: object_batch.cc.
  grpc::Status CreateBatch(grpc::ServerContext* ctx,
                           const v1::CreateBatchRequest* req,
                           v1::BatchResponse* resp) override;
  grpc::Status MigrateBatch(grpc::ServerContext* ctx,
                            const v1::MigrateBatchRequest* req,
                            v1::BatchResponse* resp) override;
  grpc::Status DestroyBatch(grpc::ServerContext* ctx,
                            const v1::DestroyBatchRequest* req,
                            v1::BatchResponse* resp) override;
  grpc::Status ExecBatch(grpc::ServerContext* ctx,
                         const v1::ExecBatchRequest* req,
                         v1::BatchResponse* resp) override;

 private:
  RpcEnv* const env_;
};

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_SERVICES_OBJECT_SERVICE_H_
