// MemoryManager batches: CreateBatch, MigrateBatch, DestroyBatch (see
// memory_manager.h). Validation is whole-request and happens before anything
// changes; entries then run independently, in request order. Every batch
// registers one FenceArray (FenceKind::kArray) over its submitted entries'
// fences.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
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
  for (size_t i = 0; i < requests.size(); ++i) {
    absl::StatusOr<std::vector<Region*>> p = ValidateCreate(requests[i]);
    if (!p.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("entries[", i, "].", p.status().message()));
    }
  }
  BatchResult result;
  result.entries.resize(requests.size());
  std::vector<FenceRef> fences;
  std::vector<std::shared_ptr<MoveRecord>> records;
  fences.reserve(requests.size());
  records.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    absl::StatusOr<CreateResult> c = CreateObject(who, requests[i]);
    BatchEntry& e = result.entries[i];
    if (!c.ok()) {
      e.status = c.status();
      continue;
    }
    e.object_id = c->object_id;
    e.fence_id = c->fence_id;
    absl::StatusOr<FenceRef> f = fences_.GetFence(c->fence_id);
    if (f.ok()) {
      fences.push_back(*f);
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
  BatchResult result;
  result.entries.resize(entries.size());
  std::vector<FenceRef> fences;
  std::vector<std::shared_ptr<MoveRecord>> records;
  fences.reserve(entries.size());
  records.reserve(entries.size());
  {
    // One hold of the placement lock for the whole batch.
    MutexLock lock(&mu_);
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
  for (size_t i = 0; i < ids.size(); ++i) {
    result.entries[i].object_id = ids[i];
    result.entries[i].status = DestroyObject(who, ids[i]);
  }
  RegisterArray(who, {}, {}, &result);
  return result;
}

}  // namespace gpumig
