// ObjectService.WriteFromBuffer / ReadToBuffer: Write and Read whose bytes
// come from (go to) a shared buffer the caller registered on the
// registration socket (docs/api.md "Shared buffers"). The copy is the same
// MemoryManager::Write / Read the streams use, handed the buffer's mapping
// directly: no staging copy in the RPC layer.
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "core/shm/shared_buffer_registry.h"
#include "daemon/services/handles.h"
#include "daemon/services/object_service.h"
#include "daemon/services/status_util.h"

namespace gpumig {
namespace daemon {
namespace {

constexpr char kService[] = "/gpumig.v1.ObjectService/";

struct Checked {
  uint64_t object = 0;
  shm::BufferRef buffer;
};

// The common checks of both calls, in order: the socket, the handle, the
// buffer id, the object, the buffer, the buffer's range. The object's range
// is the manager's (Write / Read, called even for length 0).
absl::StatusOr<Checked> Check(RpcEnv* env, grpc::ServerContext* ctx,
                              const Principal& who, const std::string& handle,
                              uint64_t offset, uint64_t buffer_id,
                              uint64_t buffer_offset, uint64_t length) {
  shm::SharedBufferRegistry* reg = env->shared_buffers();
  if (reg == nullptr) {
    return absl::FailedPreconditionError(
        "the daemon runs without shared buffers "
        "(listeners.unix_socket.shared_buffers.socket_name \"none\"); use "
        "Write/Read");
  }
  // Unix-socket callers are peers "fd:N" (ConnectionTable::PeerName).
  if (!absl::StartsWith(ctx->peer(), "fd:")) {
    return absl::FailedPreconditionError(
        "shared buffers are only for callers on the daemon's unix socket");
  }
  absl::StatusOr<uint64_t> id = ParseHandle("handle", handle);
  if (!id.ok()) return id.status();
  if (buffer_id == 0) return FieldError("buffer_id", "required (non-zero)");
  absl::StatusOr<ObjectInfo> info = env->OwnedObject(who, *id);
  if (!info.ok()) {
    if (info.status().code() == absl::StatusCode::kPermissionDenied) {
      return absl::PermissionDeniedError("permission denied");
    }
    return info.status();
  }
  absl::StatusOr<shm::BufferRef> buf = reg->Acquire(who.uid, buffer_id);
  if (!buf.ok()) {
    if (buf.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(absl::StrCat(
          "no shared buffer ", buffer_id,
          " (never registered, unregistered, or its connection closed)"));
    }
    return buf.status();
  }
  if (buffer_offset > buf->size() || length > buf->size() - buffer_offset) {
    return RangeError(
        "buffer_offset",
        absl::StrCat("[", buffer_offset, ", +", length,
                     ") is beyond the buffer's ", buf->size(), " bytes"));
  }
  Checked c;
  c.object = *id;
  c.buffer = *std::move(buf);
  return c;
}

}  // namespace

grpc::Status ObjectService::WriteFromBuffer(
    grpc::ServerContext* ctx, const v1::WriteFromBufferRequest* req,
    v1::WriteFromBufferResponse* resp) {
  return env_->Run(
      absl::StrCat(kService, "WriteFromBuffer"), ctx,
      [&](const Principal& who) -> absl::Status {
        absl::StatusOr<Checked> c =
            Check(env_, ctx, who, req->handle(), req->offset(),
                  req->buffer_id(), req->buffer_offset(), req->length());
        if (!c.ok()) return c.status();
        absl::Status s = env_->manager().Write(
            who, c->object, req->offset(),
            absl::MakeConstSpan(c->buffer.data() + req->buffer_offset(),
                                req->length()),
            RpcEnv::Deadline(*ctx));
        if (!s.ok()) return s;
        if (req->length() > 0) {
          env_->shared_buffers()->CountCopy(/*write=*/true, req->length());
        }
        resp->set_bytes_written(req->length());
        return absl::OkStatus();
      });
}

grpc::Status ObjectService::ReadToBuffer(grpc::ServerContext* ctx,
                                         const v1::ReadToBufferRequest* req,
                                         v1::ReadToBufferResponse* resp) {
  return env_->Run(
      absl::StrCat(kService, "ReadToBuffer"), ctx,
      [&](const Principal& who) -> absl::Status {
        absl::StatusOr<Checked> c =
            Check(env_, ctx, who, req->handle(), req->offset(),
                  req->buffer_id(), req->buffer_offset(), req->length());
        if (!c.ok()) return c.status();
        absl::Status s = env_->manager().Read(
            who, c->object, req->offset(),
            absl::MakeSpan(c->buffer.data() + req->buffer_offset(),
                           req->length()),
            RpcEnv::Deadline(*ctx));
        if (!s.ok()) return s;
        if (req->length() > 0) {
          env_->shared_buffers()->CountCopy(/*write=*/false, req->length());
        }
        resp->set_bytes_read(req->length());
        return absl::OkStatus();
      });
}

}  // namespace daemon
}  // namespace gpumig
