// TakeSnapshot: fills a metrics Snapshot (metrics.h) from a MemoryManager,
// for Metrics::SetSnapshotSource:
//
//   metrics->SetSnapshotSource([m = manager_.get()] { return TakeSnapshot(*m);
//   });
//
// Costs one MemoryManager::ListRegions() and one Stats() (each walks the
// object table under the manager's lock) per scrape. Every fault kind is
// reported, fired or not, so its series exists from the start.
//
// Thread-safe as the MemoryManager is.
#ifndef GPUMIG_DAEMON_METRICS_MANAGER_SNAPSHOT_H_
#define GPUMIG_DAEMON_METRICS_MANAGER_SNAPSHOT_H_

#include "core/manager/memory_manager.h"
#include "daemon/metrics/metrics.h"

namespace gpumig {
namespace daemon {

Snapshot TakeSnapshot(MemoryManager& manager);

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_METRICS_MANAGER_SNAPSHOT_H_
