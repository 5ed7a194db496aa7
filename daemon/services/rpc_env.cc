#include "daemon/services/rpc_env.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/log.h"

namespace gpumig {
namespace daemon {
namespace {

// How often a blocked wait looks at cancellation.
constexpr absl::Duration kPollSlice = absl::Milliseconds(100);

}  // namespace

RpcEnv::RpcEnv(MemoryManager* manager, const Authenticator* auth,
               ServiceOptions options)
    : RpcEnv(
          manager,
          [auth](const grpc::ServerContext& ctx) {
            return auth->Authenticate(ctx.peer(), ctx.auth_context().get());
          },
          std::move(options)) {}

RpcEnv::RpcEnv(MemoryManager* manager, PrincipalResolver resolve,
               ServiceOptions options)
    : manager_(manager),
      resolve_(std::move(resolve)),
      options_(std::move(options)),
      start_time_(absl::Now()) {}

grpc::Status RpcEnv::Run(absl::string_view method, grpc::ServerContext* ctx,
                         Body body) {
  const absl::Time start = absl::Now();
  absl::Status status;
  std::string principal = "-";
  if (draining()) {
    status = absl::UnavailableError("gpumigd is shutting down");
  } else {
    absl::StatusOr<Principal> who = resolve_(*ctx);
    if (!who.ok()) {
      status = who.status();
    } else {
      principal = who->name;
      status = body(*who);
    }
  }
  const absl::Duration latency = absl::Now() - start;
  stats_.Record(method, status.code(), latency);
  const LogLevel level = status.code() == absl::StatusCode::kInternal
                             ? LogLevel::kError
                             : LogLevel::kDebug;
  if (LogEnabled(level)) {
    Log(level, "rpc")
        .Kv("method", method)
        .Kv("principal", principal)
        .Kv("code", absl::StatusCodeToString(status.code()))
        .Kv("latency_us", absl::ToInt64Microseconds(latency))
        .Kv("message", status.message());
  }
  return ToGrpcStatus(status);
}

void RpcEnv::SetFaultsChangedHook(std::function<void()> hook) {
  absl::MutexLock lock(&hook_mu_);
  faults_changed_ = std::move(hook);
}

void RpcEnv::FaultsChanged() {
  std::function<void()> hook;
  {
    absl::MutexLock lock(&hook_mu_);
    hook = faults_changed_;
  }
  if (hook) hook();
}

bool RpcEnv::TryAddWatcher() {
  int n = watchers_.load(std::memory_order_relaxed);
  while (n < options_.max_watchers) {
    if (watchers_.compare_exchange_weak(n, n + 1)) return true;
  }
  return false;
}

void RpcEnv::RemoveWatcher() { watchers_.fetch_sub(1); }

absl::Time RpcEnv::Deadline(const grpc::ServerContext& ctx, absl::Time cap) {
  const auto d = ctx.deadline();
  if (d >= std::chrono::system_clock::time_point::max() -
               std::chrono::hours(24 * 365)) {
    return cap;
  }
  return std::min(cap, absl::FromChrono(d));
}

absl::StatusOr<FenceInfo> RpcEnv::WaitForFence(const Principal& who,
                                               uint64_t fence_id,
                                               absl::Time deadline,
                                               grpc::ServerContext* ctx) {
  // Every wait is observed, an already-signalled fence's (0 s) included.
  struct Observe {
    const std::function<void(absl::Duration)>& observer;
    absl::Time start;
    ~Observe() {
      if (observer) observer(absl::Now() - start);
    }
  } observe{fence_wait_observer_, absl::Now()};
  absl::StatusOr<FenceInfo> info = manager_->GetFence(who, fence_id);
  if (!info.ok() || info->signaled) return info;
  absl::StatusOr<FenceRef> fence = manager_->fences().GetFence(fence_id);
  if (!fence.ok()) return fence.status();
  for (;;) {
    const absl::Time now = absl::Now();
    if ((*fence)->WaitUntil(std::min(deadline, now + kPollSlice))) break;
    if (ctx != nullptr && ctx->IsCancelled()) {
      return absl::CancelledError("the call was cancelled");
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "fence ", fence_id, " has not signalled yet; the operation goes on"));
    }
  }
  absl::StatusOr<FenceInfo> after = manager_->fences().Get(fence_id);
  if (after.ok()) return after;
  // Aged out of the history between the signal and now: report what we saw.
  info->signaled = true;
  info->error = (*fence)->error();
  info->signaled_at = (*fence)->signal_time();
  return info;
}

absl::StatusOr<ObjectInfo> RpcEnv::OwnedObject(const Principal& who,
                                               uint64_t id) {
  absl::StatusOr<ObjectInfo> info = manager_->GetObject(who, id);
  if (!info.ok()) return info.status();
  if (info->owner != who.name) return PermissionDenied();
  if (info->state == ObjectState::kUnknown) {
    return absl::DataLossError(absl::StrCat(
        "object is in unknown state (", info->unknown_reason, "); destroy it"));
  }
  return info;
}

}  // namespace daemon
}  // namespace gpumig
