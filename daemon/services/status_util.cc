#include "daemon/services/status_util.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gpumig {
namespace daemon {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  if (status.code() == absl::StatusCode::kPermissionDenied) {
    return grpc::Status(code, "permission denied");
  }
  return grpc::Status(code, std::string(status.message()));
}

absl::Status FieldError(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::Status RangeError(absl::string_view field, absl::string_view problem) {
  return absl::OutOfRangeError(absl::StrCat(field, ": ", problem));
}

absl::Status PermissionDenied() {
  return absl::PermissionDeniedError("permission denied");
}

void RpcStats::Record(absl::string_view method, absl::StatusCode code,
                      absl::Duration latency) {
  std::vector<Observer> observers;
  {
    absl::MutexLock lock(&mu_);
    MethodStats& m = methods_[method];
    if (m.method.empty()) m.method = std::string(method);
    ++m.calls;
    if (code != absl::StatusCode::kOk) ++m.errors;
    observers = observers_;
  }
  for (const Observer& o : observers) o(method, code, latency);
}

std::vector<RpcStats::MethodStats> RpcStats::Snapshot() const {
  std::vector<MethodStats> out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, m] : methods_) out.push_back(m);
  }
  std::sort(out.begin(), out.end(),
            [](const MethodStats& a, const MethodStats& b) {
              return a.method < b.method;
            });
  return out;
}

void RpcStats::AddObserver(Observer observer) {
  absl::MutexLock lock(&mu_);
  observers_.push_back(std::move(observer));
}

}  // namespace daemon
}  // namespace gpumig
