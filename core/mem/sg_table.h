// SgTable: the blocks backing one buffer object in one region, shared by
// reference count: the blocks return to the allocator only when the last
// reference (object, in-flight blit, or CPU access) is dropped.
//
// Whoever touches the memory holds a reference: the object while it is
// placed there, a queued blit, a failsafe work that may memcpy. The blocks go
// back to the region's allocator only when the last holder drops its
// reference, so destroying or migrating an object while a copy is in flight
// never lets another allocation reuse memory under that copy.
//
// The one exception is pipelined eviction (TTM's `man->move`): ReleaseEarly()
// hands the blocks back at once while the table stays readable for the
// eviction's own blit and failsafe work. That is safe only because every new
// placement in the region awaits the region's last eviction fence before its
// first write (see Region::PendingEvictionFence()).
//
// Thread-safe: immutable after construction except for the release state.
#ifndef GPUMIG_CORE_MEM_SG_TABLE_H_
#define GPUMIG_CORE_MEM_SG_TABLE_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/mem/buddy_allocator.h"

namespace gpumig {

class Region;

class SgTable {
 public:
  // Takes ownership of `blocks`, allocated from `region`'s allocator.
  // `cpu_accessible`: every block lies inside the region's CPU aperture.
  SgTable(Region* region, std::vector<Block> blocks, bool cpu_accessible);
  SgTable(const SgTable&) = delete;
  SgTable& operator=(const SgTable&) = delete;
  // Returns the blocks to the region unless ReleaseEarly() already did.
  ~SgTable();

  Region* region() const { return region_; }
  const std::vector<Block>& blocks() const { return blocks_; }
  // Total bytes (sum of block sizes).
  uint64_t size() const { return size_; }
  // Every block is inside the region's CPU-visible aperture.
  bool cpu_accessible() const { return cpu_accessible_; }

  // Pipelined eviction: returns the blocks to the allocator now; the table
  // keeps describing them for the eviction's blit and failsafe. Idempotent.
  void ReleaseEarly();
  bool released_early() const {
    return released_.load(std::memory_order_acquire);
  }

  // Calls fn(region_offset, length, table_offset) for each contiguous piece
  // of [offset, offset + length) of this table, in order. Adjacent blocks are
  // merged into one piece. The range must lie inside [0, size()).
  template <typename Fn>
  void ForEachRange(uint64_t offset, uint64_t length, Fn&& fn) const {
    uint64_t pos = 0;
    uint64_t run_region = 0, run_len = 0, run_table = 0;
    for (const Block& b : blocks_) {
      if (length == 0) break;
      if (offset >= pos + b.size) {
        pos += b.size;
        continue;
      }
      const uint64_t in_block = offset - pos;
      const uint64_t n = std::min<uint64_t>(b.size - in_block, length);
      const uint64_t region_off = b.offset + in_block;
      if (run_len > 0 && run_region + run_len == region_off) {
        run_len += n;
      } else {
        if (run_len > 0) fn(run_region, run_len, run_table);
        run_region = region_off;
        run_len = n;
        run_table = offset;
      }
      offset += n;
      length -= n;
      pos += b.size;
    }
    if (run_len > 0) fn(run_region, run_len, run_table);
  }

 private:
  Region* const region_;
  const std::vector<Block> blocks_;
  const uint64_t size_;
  const bool cpu_accessible_;
  std::atomic<bool> released_{false};
};

using SgTableRef = std::shared_ptr<SgTable>;

}  // namespace gpumig

#endif  // GPUMIG_CORE_MEM_SG_TABLE_H_
