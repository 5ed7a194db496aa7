#include "daemon/services/object_service.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "daemon/log.h"
#include "daemon/services/convert.h"
#include "daemon/services/handles.h"

namespace gpumig {
namespace daemon {
namespace {

constexpr char kService[] = "/gpumig.v1.ObjectService/";
constexpr uint32_t kDefaultListPage = 100;

std::string M(absl::string_view name) { return absl::StrCat(kService, name); }

}  // namespace

grpc::Status ObjectService::Create(grpc::ServerContext* ctx,
                                   const v1::CreateObjectRequest* req,
                                   v1::CreateObjectResponse* resp) {
  return env_->Run(M("Create"), ctx, [&](const Principal& who) -> absl::Status {
    // The core takes an empty list as "every region"; the proto has no
    // spelling for that, so an empty list is a request without placements.
    if (req->placements().empty()) {
      return FieldError("placements",
                        "required: at least one region name, e.g. \"lmem\"");
    }
    MemoryManager::CreateRequest create;
    create.size = req->size_bytes();
    create.placements.assign(req->placements().begin(),
                             req->placements().end());
    create.require_cpu_access = req->require_cpu_access();
    create.pin = req->pin();
    create.label = req->label();
    absl::StatusOr<MemoryManager::CreateResult> created =
        env_->manager().CreateObject(who, create);
    if (!created.ok()) {
      if (absl::IsResourceExhausted(created.status()) &&
          absl::StartsWith(created.status().message(), "quota")) {
        Log(LogLevel::kWarn, "quota_refused")
            .Kv("principal", who.name)
            .Kv("size_bytes", req->size_bytes())
            .Kv("message", created.status().message());
      }
      return created.status();
    }
    resp->set_fence_id(created->fence_id);
    absl::StatusOr<ObjectInfo> info =
        env_->manager().GetObject(who, created->object_id);
    if (!info.ok()) return info.status();  // Destroyed meanwhile.
    ObjectToProto(*info, resp->mutable_object());
    return absl::OkStatus();
  });
}

grpc::Status ObjectService::Destroy(grpc::ServerContext* ctx,
                                    const v1::DestroyObjectRequest* req,
                                    v1::DestroyObjectResponse* /*resp*/) {
  return env_->Run(
      M("Destroy"), ctx, [&](const Principal& who) -> absl::Status {
        absl::StatusOr<uint64_t> id = ParseHandle("handle", req->handle());
        if (!id.ok()) return id.status();
        return env_->manager().DestroyObject(who, *id);
      });
}

grpc::Status ObjectService::Get(grpc::ServerContext* ctx,
                                const v1::GetObjectRequest* req,
                                v1::Object* resp) {
  return env_->Run(M("Get"), ctx, [&](const Principal& who) -> absl::Status {
    absl::StatusOr<uint64_t> id = ParseHandle("handle", req->handle());
    if (!id.ok()) return id.status();
    absl::StatusOr<ObjectInfo> info = env_->manager().GetObject(who, *id);
    if (!info.ok()) return info.status();
    ObjectToProto(*info, resp);
    return absl::OkStatus();
  });
}

grpc::Status ObjectService::List(grpc::ServerContext* ctx,
                                 const v1::ListObjectsRequest* req,
                                 v1::ListObjectsResponse* resp) {
  return env_->Run(M("List"), ctx, [&](const Principal& who) -> absl::Status {
    if (req->all_principals() && !who.admin) return PermissionDenied();
    uint64_t after = 0;
    if (!req->page_token().empty()) {
      absl::StatusOr<uint64_t> token =
          ParsePageToken(req->page_token(), req->all_principals());
      if (!token.ok()) return token.status();
      after = *token;
    }
    const uint32_t page = req->page_size() == 0
                              ? kDefaultListPage
                              : std::min(req->page_size(), kMaxListPageSize);
    std::vector<ObjectInfo> objects =
        env_->manager().ListObjects(who, req->all_principals());
    auto it = std::upper_bound(
        objects.begin(), objects.end(), after,
        [](uint64_t id, const ObjectInfo& o) { return id < o.id; });
    uint64_t last = 0;
    for (; it != objects.end() && resp->objects_size() < static_cast<int>(page);
         ++it) {
      ObjectToProto(*it, resp->add_objects());
      last = it->id;
    }
    if (it != objects.end()) {
      resp->set_next_page_token(FormatPageToken(req->all_principals(), last));
    }
    return absl::OkStatus();
  });
}

grpc::Status ObjectService::Write(grpc::ServerContext* ctx,
                                  grpc::ServerReader<v1::WriteRequest>* reader,
                                  v1::WriteResponse* resp) {
  return env_->Run(M("Write"), ctx, [&](const Principal& who) -> absl::Status {
    v1::WriteRequest req;
    if (!reader->Read(&req)) {
      return FieldError("handle",
                        "required in the first message (the "
                        "stream was empty)");
    }
    absl::StatusOr<uint64_t> id = ParseHandle("handle", req.handle());
    if (!id.ok()) return id.status();
    const absl::Time deadline = RpcEnv::Deadline(*ctx);
    uint64_t offset = req.offset();
    uint64_t written = 0;
    for (bool first = true;; first = false) {
      if (!first) {
        if (!req.handle().empty()) {
          return FieldError("handle", "set only in the first message");
        }
        if (req.offset() != 0) {
          return FieldError("offset", "set only in the first message");
        }
      }
      const std::string& data = req.data();
      if (data.size() > kMaxChunkBytes) {
        return FieldError("data", absl::StrCat("chunk of ", data.size(),
                                               " bytes exceeds 1 MiB"));
      }
      // Every message, an empty one too: the manager checks the object and
      // the range (NOT_FOUND, DATA_LOSS, OUT_OF_RANGE, ...).
      absl::Status s = env_->manager().Write(
          who, *id, offset,
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(data.data()),
                              data.size()),
          deadline);
      if (!s.ok()) return s;
      offset += data.size();
      written += data.size();
      if (!reader->Read(&req)) break;
    }
    if (ctx->IsCancelled()) {
      return absl::CancelledError("the client cancelled the write");
    }
    resp->set_bytes_written(written);
    return absl::OkStatus();
  });
}

grpc::Status ObjectService::Read(grpc::ServerContext* ctx,
                                 const v1::ReadRequest* req,
                                 grpc::ServerWriter<v1::ReadResponse>* writer) {
  return env_->Run(M("Read"), ctx, [&](const Principal& who) -> absl::Status {
    if (req->max_chunk_bytes() > kMaxChunkBytes) {
      return FieldError(
          "max_chunk_bytes",
          absl::StrCat(req->max_chunk_bytes(), " exceeds 1 MiB (1048576)"));
    }
    absl::StatusOr<uint64_t> id = ParseHandle("handle", req->handle());
    if (!id.ok()) return id.status();
    absl::StatusOr<uint64_t> length =
        env_->manager().ResolveRange(who, *id, req->offset(), req->length());
    if (!length.ok()) return length.status();
    const uint64_t chunk =
        req->max_chunk_bytes() == 0 ? kMaxChunkBytes : req->max_chunk_bytes();
    const absl::Time deadline = RpcEnv::Deadline(*ctx);
    std::string buffer;
    uint64_t offset = req->offset();
    uint64_t left = *length;
    v1::ReadResponse resp;
    while (left > 0) {
      if (ctx->IsCancelled()) {
        return absl::CancelledError("the client cancelled the read");
      }
      const uint64_t n = std::min<uint64_t>(chunk, left);
      buffer.resize(n);
      absl::Status s = env_->manager().Read(
          who, *id, offset,
          absl::MakeSpan(reinterpret_cast<uint8_t*>(buffer.data()), n),
          deadline);
      if (!s.ok()) return s;
      resp.set_offset(offset);
      resp.mutable_data()->swap(buffer);
      if (!writer->Write(resp)) {
        return absl::CancelledError("the client went away");
      }
      resp.mutable_data()->swap(buffer);
      offset += n;
      left -= n;
    }
    return absl::OkStatus();
  });
}

grpc::Status ObjectService::Migrate(grpc::ServerContext* ctx,
                                    const v1::MigrateObjectRequest* req,
                                    v1::MigrateObjectResponse* resp) {
  return env_->Run(
      M("Migrate"), ctx, [&](const Principal& who) -> absl::Status {
        absl::StatusOr<uint64_t> id = ParseHandle("handle", req->handle());
        if (!id.ok()) return id.status();
        absl::StatusOr<uint64_t> fence =
            env_->manager().Migrate(who, *id, req->region());
        if (!fence.ok()) return fence.status();
        resp->set_fence_id(*fence);
        if (req->wait()) {
          absl::StatusOr<FenceInfo> done =
              env_->WaitForFence(who, *fence, RpcEnv::Deadline(*ctx), ctx);
          if (!done.ok()) return done.status();
          FenceToProto(*done, resp->mutable_fence());
        }
        return absl::OkStatus();
      });
}

grpc::Status ObjectService::Pin(grpc::ServerContext* ctx,
                                const v1::PinObjectRequest* req,
                                v1::PinObjectResponse* resp) {
  return env_->Run(M("Pin"), ctx, [&](const Principal& who) -> absl::Status {
    absl::StatusOr<uint64_t> id = ParseHandle("handle", req->handle());
    if (!id.ok()) return id.status();
    absl::StatusOr<int> count = env_->manager().Pin(who, *id);
    if (!count.ok()) return count.status();
    resp->set_pin_count(static_cast<uint32_t>(*count));
    return absl::OkStatus();
  });
}

grpc::Status ObjectService::Unpin(grpc::ServerContext* ctx,
                                  const v1::UnpinObjectRequest* req,
                                  v1::UnpinObjectResponse* resp) {
  return env_->Run(M("Unpin"), ctx, [&](const Principal& who) -> absl::Status {
    absl::StatusOr<uint64_t> id = ParseHandle("handle", req->handle());
    if (!id.ok()) return id.status();
    absl::StatusOr<int> count = env_->manager().Unpin(who, *id);
    if (!count.ok()) return count.status();
    resp->set_pin_count(static_cast<uint32_t>(*count));
    return absl::OkStatus();
  });
}

grpc::Status ObjectService::Exec(grpc::ServerContext* ctx,
                                 const v1::ExecRequest* req,
                                 v1::ExecResponse* resp) {
  return env_->Run(M("Exec"), ctx, [&](const Principal& who) -> absl::Status {
    MemoryManager& m = env_->manager();
    const absl::Time deadline = RpcEnv::Deadline(*ctx);
    absl::StatusOr<uint64_t> fence;
    switch (req->op_case()) {
      case v1::ExecRequest::kFill: {
        const v1::FillOp& op = req->fill();
        absl::StatusOr<uint64_t> id = ParseHandle("fill.handle", op.handle());
        if (!id.ok()) return id.status();
        if (op.value() > 255) {
          return FieldError(
              "fill.value",
              absl::StrCat(op.value(), " is not a byte (0..255)"));
        }
        fence = m.ExecFill(who, *id, op.offset(), op.length(),
                           static_cast<uint8_t>(op.value()));
        break;
      }
      case v1::ExecRequest::kCopy: {
        const v1::CopyOp& op = req->copy();
        absl::StatusOr<uint64_t> src =
            ParseHandle("copy.src_handle", op.src_handle());
        if (!src.ok()) return src.status();
        absl::StatusOr<uint64_t> dst =
            ParseHandle("copy.dst_handle", op.dst_handle());
        if (!dst.ok()) return dst.status();
        fence = m.ExecCopy(who, *src, *dst, op.src_offset(), op.dst_offset(),
                           op.length());
        break;
      }
      case v1::ExecRequest::kChecksum: {
        const v1::ChecksumOp& op = req->checksum();
        absl::StatusOr<uint64_t> id =
            ParseHandle("checksum.handle", op.handle());
        if (!id.ok()) return id.status();
        absl::StatusOr<MemoryManager::ChecksumResult> sum =
            m.ExecChecksum(who, *id, op.offset(), op.length(), deadline);
        if (!sum.ok()) return sum.status();
        resp->set_fence_id(sum->fence_id);
        absl::StatusOr<FenceInfo> done =
            env_->WaitForFence(who, sum->fence_id, deadline, ctx);
        if (!done.ok()) return done.status();
        FenceToProto(*done, resp->mutable_fence());
        if (sum->error.ok() &&
            resp->fence().outcome() == v1::FENCE_OUTCOME_BLIT_OK) {
          resp->set_checksum(sum->checksum);
        }
        return absl::OkStatus();
      }
      default:
        return FieldError("op", "required: one of fill, copy, checksum");
    }
    if (!fence.ok()) return fence.status();
    resp->set_fence_id(*fence);
    if (req->wait()) {
      absl::StatusOr<FenceInfo> done =
          env_->WaitForFence(who, *fence, deadline, ctx);
      if (!done.ok()) return done.status();
      FenceToProto(*done, resp->mutable_fence());
    }
    return absl::OkStatus();
  });
}

}  // namespace daemon
}  // namespace gpumig
