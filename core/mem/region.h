// Region: one memory region a Device exposes (intel_memory_region).
//
// LMEM is device-local memory of which only [0, aperture) is CPU-visible;
// SMEM is system memory, all CPU-visible. A Region owns its BuddyAllocator,
// an LRU of resident evictable objects (by object id), its eviction Timeline
// (every eviction out of this region appends a fence, and every new
// placement in it awaits the last one), and its counters.
//
// Thread-safe. The Region must outlive every SgTable allocated from it.
#ifndef GPUMIG_CORE_MEM_REGION_H_
#define GPUMIG_CORE_MEM_REGION_H_

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/region_counters.h"
#include "core/fence/fence.h"
#include "core/fence/timeline.h"
#include "core/mem/buddy_allocator.h"
#include "core/mem/sg_table.h"

namespace gpumig {

enum class RegionKind { kLmem, kSmem };
absl::string_view RegionKindName(RegionKind kind);

// A region's counters as the Region keeps them: bumped and read from any
// thread without a lock (fields and meaning: common/region_counters.h).
using LiveRegionCounters = BasicRegionCounters<std::atomic<uint64_t>>;

struct RegionConfig {
  std::string name;  // e.g. "lmem", "smem"
  RegionKind kind = RegionKind::kLmem;
  uint64_t size = 0;      // bytes, multiple of chunk_size
  uint64_t aperture = 0;  // CPU-visible bytes from offset 0 (SMEM: = size)
  uint64_t chunk_size = 4096;
};

struct RegionUsage {
  uint64_t allocated_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t free_aperture_bytes = 0;
  uint64_t largest_free_block = 0;
  uint64_t tables = 0;  // live SgTables holding blocks
};

class Region {
 public:
  // INVALID_ARGUMENT for an empty name, size 0, size or aperture not a
  // multiple of chunk_size, aperture > size, or SMEM with aperture != size.
  static absl::StatusOr<std::unique_ptr<Region>> Create(RegionConfig config);
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;
  ~Region();

  const std::string& name() const { return config_.name; }
  RegionKind kind() const { return config_.kind; }
  uint64_t size() const { return config_.size; }
  uint64_t aperture() const { return config_.aperture; }
  uint64_t chunk_size() const { return config_.chunk_size; }
  const RegionConfig& config() const { return config_; }

  // Allocates `size` bytes (rounded up to chunk_size). With
  // `require_cpu_access` every block lies inside the aperture.
  // INVALID_ARGUMENT: size 0 or larger than the region (or aperture).
  // RESOURCE_EXHAUSTED: no room now (the caller may evict and retry).
  absl::StatusOr<SgTableRef> Allocate(uint64_t size, bool require_cpu_access)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Free bytes where an allocation of that kind could be placed.
  uint64_t FreeBytes(bool require_cpu_access) const ABSL_LOCKS_EXCLUDED(mu_);
  RegionUsage Usage() const ABSL_LOCKS_EXCLUDED(mu_);

  // LRU of resident, evictable objects (by object id). Touch moves to the
  // most-recently-used end (inserting if absent).
  void LruTouch(uint64_t object_id) ABSL_LOCKS_EXCLUDED(mu_);
  void LruRemove(uint64_t object_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Least recently used first.
  std::vector<uint64_t> LruSnapshot() const ABSL_LOCKS_EXCLUDED(mu_);

  // Evictions out of this region are ordered on this timeline; a new placement
  // here awaits its last fence (freed blocks are handed on at once).
  Timeline& eviction_timeline() { return eviction_timeline_; }
  // The last eviction fence if it has not signalled yet, else null: what a
  // new placement in this region must await before its first write.
  FenceRef PendingEvictionFence() const;

  LiveRegionCounters& counters() { return counters_; }
  // The counters now, as plain values (each field read on its own: a
  // concurrent bump may land in one field and not yet in another).
  RegionCounters CountersSnapshot() const;

  absl::Status CheckInvariantsForTest() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class SgTable;
  Region(RegionConfig config, std::unique_ptr<BuddyAllocator> allocator);
  // Called by SgTable when its blocks go back.
  void FreeBlocks(const std::vector<Block>& blocks) ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  const RegionConfig config_;

  mutable absl::Mutex mu_;
  std::unique_ptr<BuddyAllocator> allocator_ ABSL_GUARDED_BY(mu_);
  uint64_t live_tables_ ABSL_GUARDED_BY(mu_) = 0;
  std::list<uint64_t> lru_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::list<uint64_t>::iterator> lru_index_
      ABSL_GUARDED_BY(mu_);

  Timeline eviction_timeline_;
  LiveRegionCounters counters_;
};

}  // namespace gpumig

#endif  // GPUMIG_CORE_MEM_REGION_H_
