#include "core/mem/region.h"

#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/base/mutex.h"

namespace gpumig {

absl::string_view RegionKindName(RegionKind kind) {
  switch (kind) {
    case RegionKind::kLmem:
      return "lmem";
    case RegionKind::kSmem:
      return "smem";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<Region>> Region::Create(RegionConfig config) {
  if (config.name.empty()) {
    return absl::InvalidArgumentError("region name is empty");
  }
  const std::string where = absl::StrCat("region \"", config.name, "\": ");
  if (config.size == 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, "size is 0"));
  }
  if (config.chunk_size == 0 ||
      (config.chunk_size & (config.chunk_size - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, "chunk_size ", config.chunk_size, " is not a power of two"));
  }
  if (config.size % config.chunk_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, "size ", config.size, " is not a multiple of the chunk size ",
        config.chunk_size));
  }
  if (config.kind == RegionKind::kSmem && config.aperture == 0) {
    config.aperture = config.size;
  }
  if (config.aperture > config.size) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "aperture ", config.aperture,
                     " is larger than the region (", config.size, ")"));
  }
  if (config.aperture % config.chunk_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, "aperture ", config.aperture,
        " is not a multiple of the chunk size ", config.chunk_size));
  }
  if (config.kind == RegionKind::kSmem && config.aperture != config.size) {
    return absl::InvalidArgumentError(
        absl::StrCat(where,
                     "system memory is CPU-visible in full; aperture "
                     "must equal size"));
  }
  auto allocator = BuddyAllocator::Create(config.size, config.chunk_size);
  if (!allocator.ok()) return allocator.status();
  return std::unique_ptr<Region>(
      new Region(std::move(config), *std::move(allocator)));
}

Region::Region(RegionConfig config, std::unique_ptr<BuddyAllocator> allocator)
    : config_(std::move(config)),
      allocator_(std::move(allocator)),
      eviction_timeline_(absl::StrCat(config_.name, "-eviction")) {}

Region::~Region() = default;

absl::StatusOr<SgTableRef> Region::Allocate(uint64_t size,
                                            bool require_cpu_access) {
  if (size == 0) {
    return absl::InvalidArgumentError("allocation size is 0");
  }
  const uint64_t limit = require_cpu_access ? config_.aperture : config_.size;
  if (size > limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "allocation of ", size, " bytes does not fit in region \"",
        config_.name, "\"", require_cpu_access ? " aperture (" : " (", limit,
        " bytes)"));
  }
  BuddyAllocator::Request request;
  request.size = size;
  if (require_cpu_access) request.range_end = config_.aperture;
  absl::StatusOr<std::vector<Block>> blocks;
  {
    MutexLock lock(&mu_);
    blocks = allocator_->Allocate(request);
    if (!blocks.ok()) return blocks.status();
    ++live_tables_;
  }
  bool cpu_accessible = true;
  for (const Block& b : *blocks) {
    if (b.offset + b.size > config_.aperture) cpu_accessible = false;
  }
  return std::make_shared<SgTable>(this, *std::move(blocks), cpu_accessible);
}

void Region::FreeBlocks(const std::vector<Block>& blocks) {
  MutexLock lock(&mu_);
  // Blocks came from our allocator; a failure here is memory corruption.
  absl::Status s = allocator_->Free(blocks);
  if (!s.ok()) {
    fprintf(stderr, "gpumig: region %s: freeing blocks failed: %s\n",
            config_.name.c_str(), s.ToString().c_str());
    abort();
  }
  --live_tables_;
}

uint64_t Region::FreeBytes(bool require_cpu_access) const {
  MutexLock lock(&mu_);
  return require_cpu_access
             ? allocator_->free_bytes_in_range(0, config_.aperture)
             : allocator_->free_bytes();
}

RegionCounters Region::CountersSnapshot() const {
  RegionCounters out;
  ForEachRegionCounter(
      [](uint64_t& value, const std::atomic<uint64_t>& live) {
        value = live.load(std::memory_order_relaxed);
      },
      out, counters_);
  return out;
}

RegionUsage Region::Usage() const {
  MutexLock lock(&mu_);
  RegionUsage u;
  u.free_bytes = allocator_->free_bytes();
  u.allocated_bytes = config_.size - u.free_bytes;
  u.free_aperture_bytes =
      config_.aperture == 0
          ? 0
          : allocator_->free_bytes_in_range(0, config_.aperture);
  u.largest_free_block = allocator_->largest_free_block();
  u.tables = live_tables_;
  return u;
}

void Region::LruTouch(uint64_t object_id) {
  MutexLock lock(&mu_);
  auto it = lru_index_.find(object_id);
  if (it != lru_index_.end()) {
    lru_.splice(lru_.end(), lru_, it->second);
    return;
  }
  lru_.push_back(object_id);
  lru_index_[object_id] = std::prev(lru_.end());
}

void Region::LruRemove(uint64_t object_id) {
  MutexLock lock(&mu_);
  auto it = lru_index_.find(object_id);
  if (it == lru_index_.end()) return;
  lru_.erase(it->second);
  lru_index_.erase(it);
}

std::vector<uint64_t> Region::LruSnapshot() const {
  MutexLock lock(&mu_);
  return std::vector<uint64_t>(lru_.begin(), lru_.end());
}

FenceRef Region::PendingEvictionFence() const {
  FenceRef last = eviction_timeline_.last_fence();
  if (last == nullptr || last->IsSignaled()) return nullptr;
  return last;
}

absl::Status Region::CheckInvariantsForTest() const {
  MutexLock lock(&mu_);
  absl::Status s = allocator_->CheckInvariantsForTest();
  if (!s.ok()) return s;
  if (lru_.size() != lru_index_.size()) {
    return absl::InternalError("LRU list and index disagree");
  }
  return absl::OkStatus();
}

}  // namespace gpumig
