// Conversions between the core's types (//core/manager) and gpumig.v1
// messages. Pure functions; no I/O and no locking.
#ifndef GPUMIG_DAEMON_SERVICES_CONVERT_H_
#define GPUMIG_DAEMON_SERVICES_CONVERT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/region_counters.h"
#include "core/fault/fault_injector.h"
#include "core/manager/fence_registry.h"
#include "core/manager/memory_manager.h"
#include "gpumig/v1/common.pb.h"
#include "gpumig/v1/faults.pb.h"
#include "gpumig/v1/fences.pb.h"
#include "gpumig/v1/objects.pb.h"
#include "gpumig/v1/regions.pb.h"

namespace gpumig {
namespace daemon {

// Unix nanoseconds; 0 for InfinitePast (not yet).
int64_t UnixNanos(absl::Time t);

void ObjectToProto(const ObjectInfo& info, v1::Object* out);

// The public outcome of a fence. Exec fences carry no MoveRecord: once
// signalled they are BLIT_OK without error and FAILED with one.
v1::FenceOutcome OutcomeOf(const FenceInfo& info);
void FenceToProto(const FenceInfo& info, v1::FenceStatus* out);
// The Watch event kind of a signalled fence.
v1::EventKind EventKindOf(const FenceInfo& info);

// The one conversion of a region's counters to the API's (every field of
// common/region_counters.h has its field in gpumig.v1.RegionCounters).
void RegionCountersToProto(const RegionCounters& counters,
                           v1::RegionCounters* out);
void RegionToProto(const RegionInfo& info, v1::Region* out);

// Checks a FaultSpec field by field and converts it. `regions` are the
// daemon's region names. INVALID_ARGUMENT naming the field ("spec.kind: ...").
// A probability trigger with seed 0 gets `random_seed`.
absl::StatusOr<FaultSpec> FaultSpecFromProto(
    const v1::FaultSpec& spec, const std::vector<std::string>& regions,
    uint64_t random_seed);
void FaultSpecToProto(const FaultSpec& spec, v1::FaultSpec* out);
void FaultToProto(const FaultInfo& info, v1::Fault* out);

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_SERVICES_CONVERT_H_
