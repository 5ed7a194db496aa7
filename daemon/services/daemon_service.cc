#include "daemon/services/daemon_service.h"

#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "core/device/drm_discovery.h"
#include "daemon/log.h"
#include "daemon/services/convert.h"
#include "daemon/services/self_test.h"

namespace gpumig {
namespace daemon {
namespace {

constexpr char kService[] = "/gpumig.v1.DaemonService/";
constexpr uint64_t kDefaultSelfTestBytes = 1 << 20;

std::string M(absl::string_view name) { return absl::StrCat(kService, name); }

}  // namespace

grpc::Status DaemonService::Ping(grpc::ServerContext* ctx,
                                 const v1::PingRequest* /*req*/,
                                 v1::PingResponse* /*resp*/) {
  return env_->Run(M("Ping"), ctx,
                   [](const Principal&) { return absl::OkStatus(); });
}

grpc::Status DaemonService::GetInfo(grpc::ServerContext* ctx,
                                    const v1::GetInfoRequest* /*req*/,
                                    v1::GetInfoResponse* resp) {
  return env_->Run(
      M("GetInfo"), ctx, [&](const Principal& who) -> absl::Status {
        Device& device = env_->manager().device();
        resp->set_version(kVersion);
        resp->set_backend(std::string(device.backend()));
        resp->set_device_name(device.description());
        absl::StatusOr<std::vector<DrmDeviceInfo>> drm = DiscoverDrmDevices();
        if (drm.ok()) {
          for (const DrmDeviceInfo& d : *drm) {
            v1::DrmDevice* out = resp->add_drm_devices();
            out->set_driver(d.driver);
            out->set_bus_id(d.bus_id);
            out->set_render_node(d.render_node);
            out->set_primary_node(d.primary_node);
            out->set_pci_vendor_id(d.vendor_id);
            out->set_pci_device_id(d.device_id);
          }
        }
        resp->set_shared_buffer_socket(env_->shared_buffer_socket());
        resp->set_start_unix_nanos(UnixNanos(env_->start_time()));
        resp->set_uptime_nanos(
            absl::ToInt64Nanoseconds(absl::Now() - env_->start_time()));
        resp->set_fault_injection_enabled(
            env_->options().fault_injection_enabled);
        v1::Principal* caller = resp->mutable_caller();
        caller->set_name(who.name);
        caller->set_uid(who.uid);
        caller->set_is_admin(who.admin);
        v1::Limits* limits = resp->mutable_limits();
        limits->set_max_chunk_bytes(kMaxChunkBytes);
        limits->set_page_bytes(kPageBytes);
        limits->set_max_list_page_size(kMaxListPageSize);
        return absl::OkStatus();
      });
}

grpc::Status DaemonService::GetStats(grpc::ServerContext* ctx,
                                     const v1::GetStatsRequest* /*req*/,
                                     v1::GetStatsResponse* resp) {
  return env_->Run(M("GetStats"), ctx, [&](const Principal&) -> absl::Status {
    for (const RpcStats::MethodStats& m : env_->stats().Snapshot()) {
      v1::RpcMethodStats* out = resp->add_rpcs();
      out->set_method(m.method);
      out->set_calls(m.calls);
      out->set_errors(m.errors);
    }
    const ManagerStats s = env_->manager().Stats();
    resp->set_objects(s.objects);
    resp->set_unknown_state_objects(s.unknown_state_objects);
    resp->set_fences_pending(s.fences_pending);
    resp->set_fence_history_size(env_->options().fence_history);
    resp->set_fences_created(s.fences_created);
    resp->set_watchers(env_->watchers());
    resp->set_engine_wedged(s.engine_wedged);
    for (const RegionInfo& r : env_->manager().ListRegions()) {
      RegionToProto(r, resp->add_regions());
    }
    if (const shm::SharedBufferRegistry* reg = env_->shared_buffers()) {
      const shm::ShmStats st = reg->stats();
      v1::SharedBufferStats* sb = resp->mutable_shared_buffers();
      sb->set_enabled(true);
      sb->set_buffers(st.buffers);
      sb->set_bytes(st.bytes);
      sb->set_connections(st.connections);
      sb->set_registrations(st.registrations);
      sb->set_rejections(st.rejections);
      sb->set_unregistrations(st.unregistrations);
      sb->set_bytes_written(st.bytes_written);
      sb->set_bytes_read(st.bytes_read);
      sb->set_max_buffers_per_principal(
          reg->limits().max_buffers_per_principal);
      sb->set_max_bytes_per_principal(reg->limits().max_bytes_per_principal);
      sb->set_max_total_bytes(reg->limits().max_total_bytes);
    }
    return absl::OkStatus();
  });
}

grpc::Status DaemonService::SelfTest(grpc::ServerContext* ctx,
                                     const v1::SelfTestRequest* req,
                                     v1::SelfTestResponse* resp) {
  return env_->Run(
      M("SelfTest"), ctx, [&](const Principal& who) -> absl::Status {
        if (!who.admin) return PermissionDenied();
        if (req->bytes_per_region() % kPageBytes != 0) {
          return FieldError("bytes_per_region",
                            absl::StrCat(req->bytes_per_region(),
                                         " is not a multiple of 4096"));
        }
        if (req->with_faults() && !env_->options().fault_injection_enabled) {
          return absl::FailedPreconditionError(
              "with_faults needs fault injection, which is disabled");
        }
        if (self_test_running_.exchange(true)) {
          return absl::FailedPreconditionError(
              "a self-test is already running");
        }
        absl::Cleanup done = [this] { self_test_running_.store(false); };
        SelfTestOptions options;
        options.bytes_per_region = req->bytes_per_region() == 0
                                       ? kDefaultSelfTestBytes
                                       : req->bytes_per_region();
        options.with_faults = req->with_faults();
        options.deadline = RpcEnv::Deadline(*ctx);
        options.cancelled = [this, ctx] {
          return ctx->IsCancelled() || env_->draining();
        };
        Log(LogLevel::kInfo, "selftest_start")
            .Kv("principal", who.name)
            .Kv("bytes_per_region", options.bytes_per_region)
            .Kv("with_faults", options.with_faults);
        absl::StatusOr<SelfTestResult> r =
            RunSelfTest(env_->manager(), options);
        if (options.with_faults) env_->FaultsChanged();
        if (!r.ok()) return r.status();
        resp->set_passed(r->passed);
        resp->set_canary_bytes_written(r->canary_bytes_written);
        resp->set_objects_checked(r->objects_checked);
        resp->set_violations(r->violations);
        for (const std::string& d : r->details) resp->add_details(d);
        Log(r->passed ? LogLevel::kInfo : LogLevel::kError, "selftest_done")
            .Kv("passed", r->passed)
            .Kv("objects_checked", r->objects_checked)
            .Kv("violations", r->violations);
        return absl::OkStatus();
      });
}

}  // namespace daemon
}  // namespace gpumig
