#include "daemon/services/fault_service.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/log.h"
#include "daemon/services/convert.h"

namespace gpumig {
namespace daemon {
namespace {

constexpr char kService[] = "/gpumig.v1.FaultService/";

std::string M(absl::string_view name) { return absl::StrCat(kService, name); }

uint64_t RandomSeed() {
  std::random_device rd;
  uint64_t seed = 0;
  while (seed == 0) seed = (uint64_t{rd()} << 32) | rd();
  return seed;
}

}  // namespace

absl::Status FaultService::CheckAllowed(const Principal& who) const {
  if (!who.admin) return PermissionDenied();
  if (!env_->options().fault_injection_enabled) {
    return absl::FailedPreconditionError(
        "fault injection is disabled (start gpumigd with "
        "--enable_fault_injection or enable_fault_injection: true)");
  }
  return absl::OkStatus();
}

grpc::Status FaultService::Inject(grpc::ServerContext* ctx,
                                  const v1::InjectFaultRequest* req,
                                  v1::Fault* resp) {
  return env_->Run(M("Inject"), ctx, [&](const Principal& who) -> absl::Status {
    if (absl::Status s = CheckAllowed(who); !s.ok()) return s;
    if (!req->has_spec()) return FieldError("spec", "required");
    std::vector<std::string> regions;
    for (Region* r : env_->manager().device().regions()) {
      regions.push_back(r->name());
    }
    absl::StatusOr<FaultSpec> spec =
        FaultSpecFromProto(req->spec(), regions, RandomSeed());
    if (!spec.ok()) return spec.status();
    FaultInjector& faults = env_->manager().faults();
    absl::StatusOr<uint64_t> added =
        faults.Add(*spec, static_cast<size_t>(env_->options().max_faults));
    if (!added.ok()) return added.status();
    const uint64_t id = *added;
    env_->FaultsChanged();
    FaultInfo info;
    info.id = id;
    info.spec = *spec;
    info.created = absl::Now();  // Cleared meanwhile: close enough.
    for (const FaultInfo& f : faults.List()) {
      if (f.id == id) info = f;
    }
    FaultToProto(info, resp);
    Log(LogLevel::kWarn, "fault_injected")
        .Kv("principal", who.name)
        .Kv("id", id)
        .Kv("kind", FaultKindName(spec->kind))
        .Kv("trigger",
            v1::FaultTrigger::descriptor()
                ->FindFieldByNumber(req->spec().trigger().trigger_case())
                ->name())
        .Kv("region", spec->region.empty() ? "*" : spec->region)
        .Kv("op", spec->op.empty() ? "*" : spec->op)
        .Kv("seed", spec->seed);
    return absl::OkStatus();
  });
}

grpc::Status FaultService::Clear(grpc::ServerContext* ctx,
                                 const v1::ClearFaultsRequest* req,
                                 v1::ClearFaultsResponse* resp) {
  return env_->Run(M("Clear"), ctx, [&](const Principal& who) -> absl::Status {
    if (absl::Status s = CheckAllowed(who); !s.ok()) return s;
    FaultInjector& faults = env_->manager().faults();
    switch (req->target_case()) {
      case v1::ClearFaultsRequest::kId: {
        if (req->id() == 0) return FieldError("id", "must be non-zero");
        if (absl::Status s = faults.Remove(req->id()); !s.ok()) return s;
        resp->set_cleared(1);
        break;
      }
      case v1::ClearFaultsRequest::kAll: {
        if (!req->all()) return FieldError("all", "must be true");
        resp->set_cleared(static_cast<uint32_t>(faults.Clear()));
        break;
      }
      default:
        return FieldError("target", "required: id or all");
    }
    env_->FaultsChanged();
    Log(LogLevel::kWarn, "fault_cleared")
        .Kv("principal", who.name)
        .Kv("target", req->target_case() == v1::ClearFaultsRequest::kAll
                          ? std::string("all")
                          : absl::StrCat(req->id()))
        .Kv("cleared", resp->cleared());
    return absl::OkStatus();
  });
}

grpc::Status FaultService::List(grpc::ServerContext* ctx,
                                const v1::ListFaultsRequest* /*req*/,
                                v1::ListFaultsResponse* resp) {
  return env_->Run(M("List"), ctx, [&](const Principal& who) -> absl::Status {
    if (absl::Status s = CheckAllowed(who); !s.ok()) return s;
    for (const FaultInfo& f : env_->manager().faults().List()) {
      FaultToProto(f, resp->add_faults());
    }
    return absl::OkStatus();
  });
}

}  // namespace daemon
}  // namespace gpumig
