#include "core/mem/sg_table.h"

#include <utility>

#include "core/mem/region.h"

namespace gpumig {
namespace {

uint64_t SumSizes(const std::vector<Block>& blocks) {
  uint64_t total = 0;
  for (const Block& b : blocks) total += b.size;
  return total;
}

}  // namespace

SgTable::SgTable(Region* region, std::vector<Block> blocks, bool cpu_accessible)
    : region_(region),
      blocks_(std::move(blocks)),
      size_(SumSizes(blocks_)),
      cpu_accessible_(cpu_accessible) {}

SgTable::~SgTable() { ReleaseEarly(); }

void SgTable::ReleaseEarly() {
  if (released_.exchange(true, std::memory_order_acq_rel)) return;
  region_->FreeBlocks(blocks_);
}

}  // namespace gpumig
