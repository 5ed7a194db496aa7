// MemoryManager batches: CreateBatch, MigrateBatch, DestroyBatch, ExecBatch
// (see memory_manager.h). Validation is whole-request and happens before
// anything changes; entries then run independently, in request order, under
// one hold of mu_. Every batch registers one FenceArray (FenceKind::kArray)
// over its submitted entries' fences.
//
// Eviction is per batch, not per entry: before the first entry places,
// the batch adds up what its entries need in each target region and makes
// room for the total in one pass (EvictForBatchLocked); members of the batch
// are never victims of its own placement (batch_members_).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/base/mutex.h"
#include "core/manager/memory_manager.h"

namespace gpumig {
namespace {

absl::Status CheckCount(size_t n) {
  if (n == 0) {
    return absl::InvalidArgumentError(
        "entries: a batch needs at least one entry");
  }
  if (n > MemoryManager::kMaxBatchEntries) {
    return absl::InvalidArgumentError(
        absl::StrCat("entries: ", n, " entries, more than the maximum of ",
                     MemoryManager::kMaxBatchEntries));
  }
  return absl::OkStatus();
}

// Refuses a repeated id, naming both entries.
absl::Status CheckDistinct(const std::vector<uint64_t>& ids) {
  absl::flat_hash_map<uint64_t, size_t> first;
  first.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    auto [it, inserted] = first.emplace(ids[i], i);
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat("entries[", i, "]: object ", ids[i],
                       " is already in the batch (entries[", it->second, "])"));
    }
  }
  return absl::OkStatus();
}

uint64_t RoundUp(uint64_t size, const Region& r) {
  const uint64_t chunk = r.chunk_size();
  return (size + chunk - 1) / chunk * chunk;
}

// [offset, offset + length) inside `size`, length 0 meaning "to the end",
// without overflow. Returns the resolved length or OUT_OF_RANGE (the code
// the Exec RPC uses for ranges).
absl::StatusOr<uint64_t> ResolveLength(absl::string_view what, uint64_t size,
                                       uint64_t offset, uint64_t length) {
  if (offset > size) {
    return absl::OutOfRangeError(absl::StrCat(
        what, ": offset ", offset, " is beyond the object's ", size, " bytes"));
  }
  if (length == 0) return size - offset;
  if (length > size - offset) {
    return absl::OutOfRangeError(
        absl::StrCat(what, ": [", offset, ", +", length,
                     ") is beyond the object's ", size, " bytes"));
  }
  return length;
}

// Per target region, what a batch's entries need there.
struct Need {
  uint64_t bytes = 0;
  uint64_t cpu_bytes = 0;  // of which must lie inside the aperture
};

ArrayMemberOutcome Classify(const MoveRecord* record, const Fence& f) {
  if (record == nullptr) {
    return f.error().ok() ? ArrayMemberOutcome::kBlitOk
                          : ArrayMemberOutcome::kFailed;
  }
  switch (record->outcome.load(std::memory_order_acquire)) {
    case MoveOutcome::kBlitOk:
    case MoveOutcome::kPending:
      return f.error().ok() ? ArrayMemberOutcome::kBlitOk
                            : ArrayMemberOutcome::kFailed;
    case MoveOutcome::kFallbackCopy:
    case MoveOutcome::kFallbackClear:
    case MoveOutcome::kFallbackDeviceCopy:
    case MoveOutcome::kFallbackDeviceClear:
      return ArrayMemberOutcome::kFallback;
    case MoveOutcome::kUnknownState:
      return ArrayMemberOutcome::kUnknownState;
    case MoveOutcome::kFailed:
      return ArrayMemberOutcome::kFailed;
  }
  return ArrayMemberOutcome::kFailed;
}

}  // namespace

void MemoryManager::RegisterArray(
    const Principal& who, std::vector<FenceRef> fences,
    std::vector<std::shared_ptr<MoveRecord>> records, BatchResult* result) {
  auto shared_records =
      std::make_shared<std::vector<std::shared_ptr<MoveRecord>>>(
          std::move(records));
  std::shared_ptr<const FenceArray> array = FenceArray::Create(
      "batch", std::move(fences), [shared_records](size_t i, const Fence& f) {
        return Classify((*shared_records)[i].get(), f);
      });
  fences_created_.fetch_add(1, std::memory_order_relaxed);
  fences_.AddArray(array, who.name);
  result->array_fence_id = array->fence()->id();
  result->array = std::move(array);
}

absl::StatusOr<MemoryManager::BatchResult> MemoryManager::CreateBatch(
    const Principal& who, const std::vector<CreateRequest>& requests) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (absl::Status s = CheckCount(requests.size()); !s.ok()) return s;
  std::vector<std::vector<Region*>> placements(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    absl::StatusOr<std::vector<Region*>> p = ValidateCreate(requests[i]);
    if (!p.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("entries[", i, "].", p.status().message()));
    }
    placements[i] = *std::move(p);
  }
  BatchResult result;
  result.entries.resize(requests.size());
  std::vector<FenceRef> fences;
  std::vector<std::shared_ptr<MoveRecord>> records;
  fences.reserve(requests.size());
  records.reserve(requests.size());
  {
    MutexLock lock(&mu_);
    // Room for every entry in its first placement, in one eviction pass per
    // region. The objects made so far by this batch are unpublished until
    // their entry ends, and published ones are protected by batch_members_.
    absl::flat_hash_map<Region*, Need> need;
    for (size_t i = 0; i < requests.size(); ++i) {
      Region* first = placements[i].front();
      Need& n = need[first];
      const uint64_t bytes = RoundUp(requests[i].size, *first);
      n.bytes += bytes;
      if (requests[i].require_cpu_access &&
          first->kind() == RegionKind::kLmem) {
        n.cpu_bytes += bytes;
      }
    }
    absl::flat_hash_set<uint64_t> members;
    members.reserve(requests.size());
    batch_members_ = &members;
    absl::Cleanup done = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      batch_members_ = nullptr;
    };
    for (auto& [region, n] : need) {
      EvictForBatchLocked(region, n.bytes, n.cpu_bytes);
    }
    for (size_t i = 0; i < requests.size(); ++i) {
      absl::StatusOr<CreateResult> c =
          CreateLocked(who, requests[i], placements[i]);
      BatchEntry& e = result.entries[i];
      if (!c.ok()) {
        e.status = c.status();
        continue;
      }
      members.insert(c->object_id);
      e.object_id = c->object_id;
      e.fence_id = c->fence_id;
      fences.push_back(objects_[c->object_id]->move_fence());
      records.push_back(nullptr);
    }
  }
  RegisterArray(who, std::move(fences), std::move(records), &result);
  return result;
}

absl::StatusOr<MemoryManager::BatchResult> MemoryManager::MigrateBatch(
    const Principal& who, const std::vector<MigrateEntry>& entries) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (absl::Status s = CheckCount(entries.size()); !s.ok()) return s;
  std::vector<Region*> targets(entries.size());
  std::vector<uint64_t> ids(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    absl::StatusOr<Region*> t = device_->FindRegion(entries[i].region);
    if (!t.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("entries[", i, "].region: unknown region \"",
                       entries[i].region, "\""));
    }
    targets[i] = *t;
    ids[i] = entries[i].id;
  }
  if (absl::Status s = CheckDistinct(ids); !s.ok()) return s;
  absl::flat_hash_set<uint64_t> members(ids.begin(), ids.end());
  BatchResult result;
  result.entries.resize(entries.size());
  std::vector<FenceRef> fences;
  std::vector<std::shared_ptr<MoveRecord>> records;
  fences.reserve(entries.size());
  records.reserve(entries.size());
  {
    // One hold of the placement lock for the whole batch.
    MutexLock lock(&mu_);
    // What the entries that will move need in each target, then one
    // eviction pass per target for that total.
    absl::flat_hash_map<Region*, Need> need;
    for (size_t i = 0; i < entries.size(); ++i) {
      auto it = objects_.find(ids[i]);
      if (it == objects_.end()) continue;
      const BufferObject& obj = *it->second;
      if (!obj.owner().SameOwner(who) || obj.unknown() || obj.pin_count() > 0 ||
          !obj.AllowedIn(targets[i]) || obj.region() == targets[i]) {
        continue;  // The entry fails or moves nothing.
      }
      Need& n = need[targets[i]];
      const uint64_t bytes = RoundUp(obj.size(), *targets[i]);
      n.bytes += bytes;
      if (CpuPlacementFor(obj, targets[i])) n.cpu_bytes += bytes;
    }
    batch_members_ = &members;
    absl::Cleanup done = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      batch_members_ = nullptr;
    };
    for (auto& [region, n] : need) {
      EvictForBatchLocked(region, n.bytes, n.cpu_bytes);
    }
    for (size_t i = 0; i < entries.size(); ++i) {
      BatchEntry& e = result.entries[i];
      e.object_id = ids[i];
      FenceRef fence;
      std::shared_ptr<MoveRecord> record;
      absl::StatusOr<uint64_t> f =
          MigrateLocked(who, ids[i], targets[i], &fence, &record);
      if (!f.ok()) {
        e.status = f.status();
        continue;
      }
      e.fence_id = *f;
      if (fence != nullptr) {
        fences.push_back(std::move(fence));
        records.push_back(std::move(record));
      }
    }
  }
  RegisterArray(who, std::move(fences), std::move(records), &result);
  return result;
}

absl::StatusOr<MemoryManager::BatchResult> MemoryManager::DestroyBatch(
    const Principal& who, const std::vector<uint64_t>& ids) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (absl::Status s = CheckCount(ids.size()); !s.ok()) return s;
  if (absl::Status s = CheckDistinct(ids); !s.ok()) return s;
  BatchResult result;
  result.entries.resize(ids.size());
  std::vector<BufferObjectRef> gone;
  gone.reserve(ids.size());
  {
    MutexLock lock(&mu_);
    for (size_t i = 0; i < ids.size(); ++i) {
      result.entries[i].object_id = ids[i];
      absl::StatusOr<BufferObjectRef> o = UnpublishLocked(who, ids[i]);
      if (!o.ok()) {
        result.entries[i].status = o.status();
        continue;
      }
      gone.push_back(*std::move(o));
    }
  }
  // The array is over what was in flight on the destroyed objects: once it
  // signals, their blocks are back (the blits and works drop the tables
  // before they signal).
  std::vector<FenceRef> fences;
  fences.reserve(2 * gone.size());
  for (const BufferObjectRef& o : gone) {
    for (FenceRef f : {o->move_fence(), o->exec_fence()}) {
      if (f != nullptr && !f->IsSignaled()) fences.push_back(std::move(f));
    }
    FinishDestroy(o);
  }
  std::vector<std::shared_ptr<MoveRecord>> records(fences.size());
  RegisterArray(who, std::move(fences), std::move(records), &result);
  return result;
}

absl::StatusOr<MemoryManager::BatchResult> MemoryManager::ExecBatch(
    const Principal& who, const std::vector<ExecEntry>& entries) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (absl::Status s = CheckCount(entries.size()); !s.ok()) return s;
  BatchResult result;
  result.entries.resize(entries.size());
  std::vector<FenceRef> fences;
  fences.reserve(entries.size());
  {
    MutexLock lock(&mu_);
    // The size of an object a command may use (NOT_FOUND,
    // PERMISSION_DENIED, DATA_LOSS as the command would return).
    auto size_of =
        [&](uint64_t id)
            ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::StatusOr<uint64_t> {
      absl::StatusOr<BufferObjectRef> o = LookupLocked(who, id, true);
      if (!o.ok()) return o.status();
      if (absl::Status s = (*o)->CheckAccess(); !s.ok()) return s;
      return (*o)->size();
    };
    for (size_t i = 0; i < entries.size(); ++i) {
      const ExecEntry& x = entries[i];
      BatchEntry& e = result.entries[i];
      e.object_id = x.id;
      absl::StatusOr<FenceRef> f;
      switch (x.op) {
        case ExecEntry::Op::kFill:
        case ExecEntry::Op::kChecksum: {
          const bool fill = x.op == ExecEntry::Op::kFill;
          absl::StatusOr<uint64_t> size = size_of(x.id);
          absl::StatusOr<uint64_t> length =
              size.ok() ? ResolveLength(fill ? "fill" : "checksum", *size,
                                        x.offset, x.length)
                        : size.status();
          if (!length.ok()) {
            f = length.status();
          } else if (fill) {
            f = ExecFillLocked(who, x.id, x.offset, *length, x.value);
          } else {
            auto sum = std::make_shared<uint64_t>(0);
            f = ExecChecksumLocked(who, x.id, x.offset, *length, sum);
            if (f.ok()) e.checksum = std::move(sum);
          }
          break;
        }
        case ExecEntry::Op::kCopy: {
          absl::StatusOr<uint64_t> src = size_of(x.src);
          absl::StatusOr<uint64_t> dst =
              src.ok() ? size_of(x.id) : src.status();
          absl::StatusOr<uint64_t> length =
              dst.ok()
                  ? ResolveLength("copy source", *src, x.src_offset, x.length)
                  : dst.status();
          if (length.ok() && (x.offset > *dst || *length > *dst - x.offset)) {
            length = absl::OutOfRangeError(
                absl::StrCat("copy destination: [", x.offset, ", +", *length,
                             ") is beyond the object's ", *dst, " bytes"));
          }
          f = length.ok() ? ExecCopyLocked(who, x.src, x.id, x.src_offset,
                                           x.offset, *length)
                          : absl::StatusOr<FenceRef>(length.status());
          break;
        }
      }
      if (!f.ok()) {
        e.status = f.status();
        continue;
      }
      e.fence_id = (*f)->id();
      e.fence = *f;
      fences.push_back(*std::move(f));
    }
  }
  std::vector<std::shared_ptr<MoveRecord>> records(fences.size());
  RegisterArray(who, std::move(fences), std::move(records), &result);
  return result;
}

}  // namespace gpumig
