#include "core/fault/fault_kind.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace gpumig {
namespace {

constexpr bool InEnumOrder() {
  for (size_t i = 0; i < kNumFaultKinds; ++i) {
    if (static_cast<size_t>(kFaultKinds[i].kind) != i) return false;
  }
  return true;
}
static_assert(InEnumOrder(), "kFaultKinds must list the kinds in enum order");

}  // namespace

absl::string_view FaultKindName(FaultKind kind) {
  const size_t i = static_cast<size_t>(kind);
  return i < kNumFaultKinds ? kFaultKinds[i].name : "unknown";
}

absl::StatusOr<FaultKind> ParseFaultKind(absl::string_view name) {
  std::string expected;
  for (size_t i = 0; i < kNumFaultKinds; ++i) {
    if (name == kFaultKinds[i].name) return kFaultKinds[i].kind;
    absl::StrAppend(&expected,
                    i == 0                   ? ""
                    : i + 1 < kNumFaultKinds ? ", "
                                             : " or ",
                    kFaultKinds[i].name);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown fault kind \"", name, "\" (expected ", expected, ")"));
}

}  // namespace gpumig
