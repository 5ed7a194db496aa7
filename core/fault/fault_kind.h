// FaultKind: what a fault does, and the one table of every kind with its
// name. The name is the kind's gpumig.v1 value without its prefix, in lower
// case (FAULT_KIND_FAIL_BLIT <-> "fail_blit"): metrics labels, logs and the
// daemon's proto mapping all go through this table, and the daemon's tests
// check that it and the proto list the same kinds.
//
// Thread-safe: constant data and pure functions.
#ifndef GPUMIG_CORE_FAULT_FAULT_KIND_H_
#define GPUMIG_CORE_FAULT_FAULT_KIND_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gpumig {

enum class FaultKind {
  kFailBlit,            // a copy blit fails (after clearing its destination)
  kFailClear,           // a clear blit fails (destination left untouched)
  kFailWorkAllocation,  // the failsafe work cannot be set up
  kBanMemcpy,           // the CPU fallback is not allowed
  kWedgeEngine,         // every engine command fails until cleared
  kEngineLatency,       // each engine command takes `latency` longer
};

struct FaultKindEntry {
  FaultKind kind;
  const char* name;
};

// Every kind, in enum order (kFaultKinds[i].kind == FaultKind(i)).
// clang-format off
inline constexpr FaultKindEntry kFaultKinds[] = {
    {FaultKind::kFailBlit,           "fail_blit"},
    {FaultKind::kFailClear,          "fail_clear"},
    {FaultKind::kFailWorkAllocation, "fail_work_allocation"},
    {FaultKind::kBanMemcpy,          "ban_memcpy"},
    {FaultKind::kWedgeEngine,        "wedge_engine"},
    {FaultKind::kEngineLatency,      "engine_latency"},
};
// clang-format on
inline constexpr size_t kNumFaultKinds =
    sizeof(kFaultKinds) / sizeof(kFaultKinds[0]);

// "fail_blit", ...; "unknown" for a value outside the enum.
absl::string_view FaultKindName(FaultKind kind);

// The kind named `name` exactly; INVALID_ARGUMENT listing the names
// otherwise.
absl::StatusOr<FaultKind> ParseFaultKind(absl::string_view name);

}  // namespace gpumig

#endif  // GPUMIG_CORE_FAULT_FAULT_KIND_H_
