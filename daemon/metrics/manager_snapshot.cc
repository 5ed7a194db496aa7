#include "daemon/metrics/manager_snapshot.h"

#include <string>

namespace gpumig {
namespace daemon {

Snapshot TakeSnapshot(MemoryManager& manager) {
  Snapshot s;
  for (const RegionInfo& r : manager.ListRegions()) {
    RegionSnapshot out;
    out.name = r.name;
    out.kind = std::string(RegionKindName(r.kind));
    out.size_bytes = r.size;
    out.aperture_bytes = r.aperture;
    out.allocated_bytes = r.usage.allocated_bytes;
    out.free_bytes = r.usage.free_bytes;
    out.largest_free_block_bytes = r.usage.largest_free_block;
    out.objects = r.objects;
    static_cast<RegionCounters&>(out) = r;
    s.regions.push_back(std::move(out));
  }
  for (FaultKind kind : {FaultKind::kFailBlit, FaultKind::kFailClear,
                         FaultKind::kFailWorkAllocation, FaultKind::kBanMemcpy,
                         FaultKind::kWedgeEngine, FaultKind::kEngineLatency}) {
    s.faults_fired.push_back(FaultFiredSnapshot{
        std::string(FaultKindName(kind)), manager.faults().FiredTotal(kind)});
  }
  const ManagerStats stats = manager.Stats();
  s.objects = stats.objects;
  s.object_bytes = stats.object_bytes;
  s.unknown_state_objects = stats.unknown_state_objects;
  s.fences_pending = stats.fences_pending;
  s.watchers = stats.watchers;
  s.engine_wedged = stats.engine_wedged;
  return s;
}

}  // namespace daemon
}  // namespace gpumig
