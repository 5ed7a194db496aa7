// Conversion between the client library's plain structs and enums
// (gpumig_client.h) and the gpumig.v1 protobuf messages, and from gRPC and
// wire status codes to absl::Status. Private to the client package: the
// public header exposes no protobuf or gRPC type, this one is where they
// meet.
//
// Every function is a pure mapping (thread-safe, no I/O). An enum value the
// client does not know (a newer daemon) maps to kUnspecified, never fails.
#ifndef GPUMIG_CLIENT_CONVERT_H_
#define GPUMIG_CLIENT_CONVERT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "client/gpumig_client.h"
#include "gpumig/v1/daemon.pb.h"
#include "gpumig/v1/faults.pb.h"
#include "gpumig/v1/fences.pb.h"
#include "gpumig/v1/objects.pb.h"
#include "gpumig/v1/regions.pb.h"
#include "grpcpp/support/status.h"
#include "proto/enum_names.h"

namespace gpumig::client::internal {

// The same code and message (OK for OK).
absl::Status FromGrpc(const grpc::Status& status);

// A status carried in a message as (code, message): OK for 0; UNKNOWN naming
// the code for one outside absl's range.
absl::Status CodeToStatus(int32_t code, const std::string& message);

// --- Enums -------------------------------------------------------------------
//
// One table per gpumig.v1 enum: the library's value and the wire value, for
// both directions (proto/enum_names.h). A wire value not listed (a newer
// daemon's) reads as kUnspecified; kUnspecified is sent as the 0 value. The
// names the library prints are the wire values' short names.

namespace pbe = ::gpumig::v1;

// clang-format off
inline constexpr enums::EnumPair<FenceState, pbe::FenceState> kFenceStates[] = {
    {FenceState::kPending,  pbe::FENCE_STATE_PENDING},
    {FenceState::kSignaled, pbe::FENCE_STATE_SIGNALED},
};
inline constexpr enums::EnumPair<FenceKind, pbe::FenceKind> kFenceKinds[] = {
    {FenceKind::kClear,   pbe::FENCE_KIND_CLEAR},
    {FenceKind::kMigrate, pbe::FENCE_KIND_MIGRATE},
    {FenceKind::kEvict,   pbe::FENCE_KIND_EVICT},
    {FenceKind::kExec,    pbe::FENCE_KIND_EXEC},
};
inline constexpr enums::EnumPair<FenceOutcome, pbe::FenceOutcome>
    kFenceOutcomes[] = {
    {FenceOutcome::kBlitOk,              pbe::FENCE_OUTCOME_BLIT_OK},
    {FenceOutcome::kFallbackCopy,        pbe::FENCE_OUTCOME_FALLBACK_COPY},
    {FenceOutcome::kFallbackClear,       pbe::FENCE_OUTCOME_FALLBACK_CLEAR},
    {FenceOutcome::kUnknownState,        pbe::FENCE_OUTCOME_UNKNOWN_STATE},
    {FenceOutcome::kFailed,              pbe::FENCE_OUTCOME_FAILED},
    {FenceOutcome::kFallbackDeviceCopy,  pbe::FENCE_OUTCOME_FALLBACK_DEVICE_COPY},
    {FenceOutcome::kFallbackDeviceClear, pbe::FENCE_OUTCOME_FALLBACK_DEVICE_CLEAR},
};
inline constexpr enums::EnumPair<ObjectState, pbe::ObjectState> kObjectStates[] = {
    {ObjectState::kOk,      pbe::OBJECT_STATE_OK},
    {ObjectState::kUnknown, pbe::OBJECT_STATE_UNKNOWN},
};
inline constexpr enums::EnumPair<RegionKind, pbe::RegionKind> kRegionKinds[] = {
    {RegionKind::kLmem, pbe::REGION_KIND_LMEM},
    {RegionKind::kSmem, pbe::REGION_KIND_SMEM},
};
inline constexpr enums::EnumPair<EventKind, pbe::EventKind> kEventKinds[] = {
    {EventKind::kBlitOk,        pbe::EVENT_KIND_BLIT_OK},
    {EventKind::kFallbackTaken, pbe::EVENT_KIND_FALLBACK_TAKEN},
    {EventKind::kUnknownState,  pbe::EVENT_KIND_UNKNOWN_STATE},
    {EventKind::kFailed,        pbe::EVENT_KIND_FAILED},
    {EventKind::kEvicted,       pbe::EVENT_KIND_EVICTED},
    {EventKind::kDropped,       pbe::EVENT_KIND_DROPPED},
};
inline constexpr enums::EnumPair<FaultKind, pbe::FaultKind> kFaultKinds[] = {
    {FaultKind::kFailBlit,           pbe::FAULT_KIND_FAIL_BLIT},
    {FaultKind::kFailClear,          pbe::FAULT_KIND_FAIL_CLEAR},
    {FaultKind::kFailWorkAllocation, pbe::FAULT_KIND_FAIL_WORK_ALLOCATION},
    {FaultKind::kBanMemcpy,          pbe::FAULT_KIND_BAN_MEMCPY},
    {FaultKind::kWedgeEngine,        pbe::FAULT_KIND_WEDGE_ENGINE},
    {FaultKind::kEngineLatency,      pbe::FAULT_KIND_ENGINE_LATENCY},
};
// clang-format on

FenceState FromProto(::gpumig::v1::FenceState v);
FenceKind FromProto(::gpumig::v1::FenceKind v);
::gpumig::v1::FenceKind ToProto(FenceKind v);
FenceOutcome FromProto(::gpumig::v1::FenceOutcome v);
ObjectState FromProto(::gpumig::v1::ObjectState v);
RegionKind FromProto(::gpumig::v1::RegionKind v);
EventKind FromProto(::gpumig::v1::EventKind v);
::gpumig::v1::EventKind ToProto(EventKind v);
FaultKind FromProto(::gpumig::v1::FaultKind v);
::gpumig::v1::FaultKind ToProto(FaultKind v);

// --- Messages ----------------------------------------------------------------

FenceStatus FromProto(const ::gpumig::v1::FenceStatus& p);
ObjectInfo FromProto(const ::gpumig::v1::Object& p);
RegionInfo FromProto(const ::gpumig::v1::Region& p);
FaultSpec FromProto(const ::gpumig::v1::FaultSpec& p);
// The trigger is exactly one of always, probability (with seed), next_n.
void ToProto(const FaultSpec& s, ::gpumig::v1::FaultSpec* p);
FaultInfo FromProto(const ::gpumig::v1::Fault& p);
WatchEvent FromProto(const ::gpumig::v1::Event& p);
DaemonInfo FromProto(const ::gpumig::v1::GetInfoResponse& r);
DaemonStats FromProto(const ::gpumig::v1::GetStatsResponse& r);
SelfTestResult FromProto(const ::gpumig::v1::SelfTestResponse& r);

// A submission's result: the fence id, and the fence when the call waited
// (`has_fence`).
SubmitResult MakeSubmitResult(uint64_t fence_id, bool has_fence,
                              const ::gpumig::v1::FenceStatus& fence);

}  // namespace gpumig::client::internal

#endif  // GPUMIG_CLIENT_CONVERT_H_
