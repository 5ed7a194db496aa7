// ObjectService batch RPCs: CreateBatch, MigrateBatch, DestroyBatch,
// ExecBatch (objects.proto). Thin: each parses the whole request first (a
// malformed entry refuses the request with INVALID_ARGUMENT
// "entries[i]...."), then calls the MemoryManager's batch once and converts
// the per-entry results.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/services/convert.h"
#include "daemon/services/handles.h"
#include "daemon/services/object_service.h"
#include "daemon/services/status_util.h"

namespace gpumig {
namespace daemon {
namespace {

constexpr char kService[] = "/gpumig.v1.ObjectService/";

std::string M(absl::string_view name) { return absl::StrCat(kService, name); }
std::string Entry(int i, absl::string_view field) {
  return absl::StrCat("entries[", i, "].", field);
}

absl::Status CheckCount(int n) {
  if (n == 0) {
    return FieldError("entries", "a batch needs at least one entry");
  }
  if (static_cast<size_t>(n) > MemoryManager::kMaxBatchEntries) {
    return FieldError("entries",
                      absl::StrCat(n, " entries, more than the maximum of ",
                                   MemoryManager::kMaxBatchEntries));
  }
  return absl::OkStatus();
}

// Converts the manager's per-entry results; waits for the array if asked.
absl::Status Finish(RpcEnv* env, grpc::ServerContext* ctx, const Principal& who,
                    const MemoryManager::BatchResult& r, bool wait,
                    bool with_object, v1::BatchResponse* resp) {
  resp->set_fence_id(r.array_fence_id);
  uint32_t ok = 0;
  resp->mutable_results()->Reserve(static_cast<int>(r.entries.size()));
  for (const MemoryManager::BatchEntry& e : r.entries) {
    v1::BatchResult* out = resp->add_results();
    out->set_error_code(static_cast<int32_t>(e.status.code()));
    if (!e.status.ok()) {
      out->set_error_message(std::string(e.status.message()));
      if (e.object_id != 0) out->set_handle(FormatHandle(e.object_id));
      continue;
    }
    ++ok;
    out->set_handle(FormatHandle(e.object_id));
    out->set_fence_id(e.fence_id);
    if (with_object) {
      absl::StatusOr<ObjectInfo> info =
          env->manager().GetObject(who, e.object_id);
      if (info.ok()) ObjectToProto(*info, out->mutable_object());
    }
  }
  resp->set_succeeded(ok);
  resp->set_failed(static_cast<uint32_t>(r.entries.size()) - ok);
  if (wait) {
    absl::StatusOr<FenceInfo> done =
        env->WaitForFence(who, r.array_fence_id, RpcEnv::Deadline(*ctx), ctx);
    if (!done.ok()) return done.status();
    FenceToProto(*done, resp->mutable_fence());
    // Checksums (ExecBatch): members have signalled; each result is valid
    // iff its own fence carries no error (an Exec fence is BLIT_OK or
    // FAILED).
    for (size_t i = 0; i < r.entries.size(); ++i) {
      const MemoryManager::BatchEntry& e = r.entries[i];
      if (e.checksum != nullptr && e.fence != nullptr &&
          e.fence->IsSignaled() && e.fence->error().ok()) {
        resp->mutable_results(static_cast<int>(i))->set_checksum(*e.checksum);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

grpc::Status ObjectService::CreateBatch(grpc::ServerContext* ctx,
                                        const v1::CreateBatchRequest* req,
                                        v1::BatchResponse* resp) {
  return env_->Run(
      M("CreateBatch"), ctx, [&](const Principal& who) -> absl::Status {
        if (absl::Status s = CheckCount(req->entries_size()); !s.ok()) return s;
        std::vector<MemoryManager::CreateRequest> creates(req->entries_size());
        for (int i = 0; i < req->entries_size(); ++i) {
          const v1::CreateObjectRequest& e = req->entries(i);
          // The rest of the entry is the manager's to check; an empty
          // list would mean "every region" there (see Create).
          if (e.placements().empty()) {
            return FieldError(Entry(i, "placements"),
                              "required: at least one region name");
          }
          MemoryManager::CreateRequest& c = creates[i];
          c.size = e.size_bytes();
          c.placements.assign(e.placements().begin(), e.placements().end());
          c.require_cpu_access = e.require_cpu_access();
          c.pin = e.pin();
          c.label = e.label();
        }
        if (ctx->IsCancelled()) return absl::CancelledError("cancelled");
        absl::StatusOr<MemoryManager::BatchResult> r =
            env_->manager().CreateBatch(who, creates);
        if (!r.ok()) return r.status();
        return Finish(env_, ctx, who, *r, req->wait(), true, resp);
      });
}

grpc::Status ObjectService::MigrateBatch(grpc::ServerContext* ctx,
                                         const v1::MigrateBatchRequest* req,
                                         v1::BatchResponse* resp) {
  return env_->Run(
      M("MigrateBatch"), ctx, [&](const Principal& who) -> absl::Status {
        if (absl::Status s = CheckCount(req->entries_size()); !s.ok()) return s;
        std::vector<MemoryManager::MigrateEntry> entries(req->entries_size());
        for (int i = 0; i < req->entries_size(); ++i) {
          const v1::MigrateBatchEntry& e = req->entries(i);
          absl::StatusOr<uint64_t> id =
              ParseHandle(Entry(i, "handle"), e.handle());
          if (!id.ok()) return id.status();
          entries[i].id = *id;
          entries[i].region = e.region().empty() ? req->region() : e.region();
          if (entries[i].region.empty()) {
            return FieldError(Entry(i, "region"),
                              "required (or set the request's region)");
          }
        }
        if (ctx->IsCancelled()) return absl::CancelledError("cancelled");
        absl::StatusOr<MemoryManager::BatchResult> r =
            env_->manager().MigrateBatch(who, entries);
        if (!r.ok()) return r.status();
        return Finish(env_, ctx, who, *r, req->wait(), false, resp);
      });
}

grpc::Status ObjectService::DestroyBatch(grpc::ServerContext* ctx,
                                         const v1::DestroyBatchRequest* req,
                                         v1::BatchResponse* resp) {
  return env_->Run(
      M("DestroyBatch"), ctx, [&](const Principal& who) -> absl::Status {
        if (absl::Status s = CheckCount(req->handles_size()); !s.ok()) return s;
        std::vector<uint64_t> ids(req->handles_size());
        for (int i = 0; i < req->handles_size(); ++i) {
          absl::StatusOr<uint64_t> id =
              ParseHandle(absl::StrCat("handles[", i, "]"), req->handles(i));
          if (!id.ok()) return id.status();
          ids[i] = *id;
        }
        if (ctx->IsCancelled()) return absl::CancelledError("cancelled");
        absl::StatusOr<MemoryManager::BatchResult> r =
            env_->manager().DestroyBatch(who, ids);
        if (!r.ok()) return r.status();
        return Finish(env_, ctx, who, *r, req->wait(), false, resp);
      });
}

grpc::Status ObjectService::ExecBatch(grpc::ServerContext* ctx,
                                      const v1::ExecBatchRequest* req,
                                      v1::BatchResponse* resp) {
  return env_->Run(
      M("ExecBatch"), ctx, [&](const Principal& who) -> absl::Status {
        if (absl::Status s = CheckCount(req->entries_size()); !s.ok()) return s;
        std::vector<MemoryManager::ExecEntry> entries(req->entries_size());
        bool wait = req->wait();
        for (int i = 0; i < req->entries_size(); ++i) {
          const v1::ExecRequest& e = req->entries(i);
          MemoryManager::ExecEntry& x = entries[i];
          if (e.wait()) {
            return FieldError(Entry(i, "wait"),
                              "must be false in a batch (set the request's "
                              "wait instead)");
          }
          absl::StatusOr<uint64_t> id;
          switch (e.op_case()) {
            case v1::ExecRequest::kFill:
              x.op = MemoryManager::ExecEntry::Op::kFill;
              id = ParseHandle(Entry(i, "fill.handle"), e.fill().handle());
              if (e.fill().value() > 255) {
                return FieldError(
                    Entry(i, "fill.value"),
                    absl::StrCat(e.fill().value(), " is not a byte (0..255)"));
              }
              x.value = static_cast<uint8_t>(e.fill().value());
              x.offset = e.fill().offset();
              x.length = e.fill().length();
              break;
            case v1::ExecRequest::kCopy: {
              x.op = MemoryManager::ExecEntry::Op::kCopy;
              absl::StatusOr<uint64_t> src = ParseHandle(
                  Entry(i, "copy.src_handle"), e.copy().src_handle());
              if (!src.ok()) return src.status();
              x.src = *src;
              id = ParseHandle(Entry(i, "copy.dst_handle"),
                               e.copy().dst_handle());
              x.src_offset = e.copy().src_offset();
              x.offset = e.copy().dst_offset();
              x.length = e.copy().length();
              break;
            }
            case v1::ExecRequest::kChecksum:
              x.op = MemoryManager::ExecEntry::Op::kChecksum;
              id = ParseHandle(Entry(i, "checksum.handle"),
                               e.checksum().handle());
              x.offset = e.checksum().offset();
              x.length = e.checksum().length();
              wait = true;  // Its result is the response, as for Exec.
              break;
            default:
              return FieldError(Entry(i, "op"),
                                "required: one of fill, copy, checksum");
          }
          if (!id.ok()) return id.status();
          x.id = *id;
        }
        if (ctx->IsCancelled()) return absl::CancelledError("cancelled");
        absl::StatusOr<MemoryManager::BatchResult> r =
            env_->manager().ExecBatch(who, entries);
        if (!r.ok()) return r.status();
        return Finish(env_, ctx, who, *r, wait, false, resp);
      });
}

}  // namespace daemon
}  // namespace gpumig
