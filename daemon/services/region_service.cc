#include "daemon/services/region_service.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "daemon/log.h"
#include "daemon/services/convert.h"

namespace gpumig {
namespace daemon {
namespace {

constexpr char kService[] = "/gpumig.v1.RegionService/";
constexpr absl::Duration kPollSlice = absl::Milliseconds(100);

std::string M(absl::string_view name) { return absl::StrCat(kService, name); }

}  // namespace

grpc::Status RegionService::List(grpc::ServerContext* ctx,
                                 const v1::ListRegionsRequest* /*req*/,
                                 v1::ListRegionsResponse* resp) {
  return env_->Run(M("List"), ctx, [&](const Principal&) -> absl::Status {
    for (const RegionInfo& r : env_->manager().ListRegions()) {
      RegionToProto(r, resp->add_regions());
    }
    return absl::OkStatus();
  });
}

grpc::Status RegionService::Get(grpc::ServerContext* ctx,
                                const v1::GetRegionRequest* req,
                                v1::Region* resp) {
  return env_->Run(M("Get"), ctx, [&](const Principal&) -> absl::Status {
    if (req->name().empty()) return FieldError("name", "required");
    absl::StatusOr<RegionInfo> r = env_->manager().GetRegion(req->name());
    if (!r.ok()) return r.status();
    RegionToProto(*r, resp);
    return absl::OkStatus();
  });
}

grpc::Status RegionService::Evict(grpc::ServerContext* ctx,
                                  const v1::EvictRegionRequest* req,
                                  v1::EvictRegionResponse* resp) {
  return env_->Run(M("Evict"), ctx, [&](const Principal& who) -> absl::Status {
    if (!who.admin) return PermissionDenied();
    if (req->name().empty()) return FieldError("name", "required");
    absl::StatusOr<MemoryManager::EvictResult> r =
        env_->manager().EvictRegion(req->name());
    if (!r.ok()) return r.status();
    resp->set_objects_evicted(r->objects_evicted);
    resp->set_bytes_evicted(r->bytes_evicted);
    resp->set_objects_skipped(r->objects_skipped);
    resp->set_last_fence_id(r->objects_evicted != 0 ? r->last_fence_id : 0);
    Log(LogLevel::kInfo, "evict")
        .Kv("principal", who.name)
        .Kv("region", req->name())
        .Kv("objects", r->objects_evicted)
        .Kv("bytes", r->bytes_evicted)
        .Kv("skipped", r->objects_skipped);
    if (req->wait() && r->objects_evicted != 0) {
      // The last eviction fence is the region timeline's, which the fence
      // registry does not hold: wait on the timeline itself.
      absl::StatusOr<Region*> region =
          env_->manager().device().FindRegion(req->name());
      if (!region.ok()) return region.status();
      FenceRef last = (*region)->eviction_timeline().last_fence();
      const absl::Time deadline = RpcEnv::Deadline(*ctx);
      while (last != nullptr &&
             !last->WaitUntil(std::min(deadline, absl::Now() + kPollSlice))) {
        if (ctx->IsCancelled()) {
          return absl::CancelledError("the call was cancelled");
        }
        if (absl::Now() >= deadline) {
          return absl::DeadlineExceededError(
              "the evictions have not all signalled yet; they go on");
        }
      }
    }
    return absl::OkStatus();
  });
}

}  // namespace daemon
}  // namespace gpumig
