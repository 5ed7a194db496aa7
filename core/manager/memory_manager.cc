#include "core/manager/memory_manager.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/utf8.h"
#include "core/base/mutex.h"

namespace gpumig {
namespace {

absl::Status PermissionDenied() {
  return absl::PermissionDeniedError("permission denied");
}

// INVALID_ARGUMENT "<field>: <problem>", the form every refusal of a
// malformed request takes (docs/api.md, "Errors").
absl::Status FieldError(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

// [offset, offset + length) inside an object of `size` bytes, without
// overflow. OUT_OF_RANGE naming `field` otherwise.
absl::Status CheckRange(absl::string_view field, uint64_t size, uint64_t offset,
                        uint64_t length) {
  if (offset > size) {
    return absl::OutOfRangeError(absl::StrCat(field, ": offset ", offset,
                                              " is beyond the object's ", size,
                                              " bytes"));
  }
  if (length > size - offset) {
    return absl::OutOfRangeError(
        absl::StrCat(field, ": [", offset, ", +", length,
                     ") is beyond the object's ", size, " bytes"));
  }
  return absl::OkStatus();
}

// As CheckRange, `length` 0 meaning "to the end": the resolved length.
absl::StatusOr<uint64_t> ResolveLength(absl::string_view field, uint64_t size,
                                       uint64_t offset, uint64_t length) {
  if (length == 0 && offset <= size) return size - offset;
  if (absl::Status s = CheckRange(field, size, offset, length); !s.ok()) {
    return s;
  }
  return length;
}

uint64_t FenceId(const FenceRef& f) { return f == nullptr ? 0 : f->id(); }

// Bytes of `sg` that lie below `limit` (the aperture, or the region size).
uint64_t BytesBelow(const SgTable& sg, uint64_t limit) {
  uint64_t n = 0;
  for (const Block& b : sg.blocks()) {
    if (b.offset + b.size <= limit) n += b.size;
  }
  return n;
}

// A fence the next engine command on the object must await: an unsignalled
// move, or a failed one (its error propagates: the content is unknown).
void AddMoveDep(const BufferObject& obj, CopyEngine::Deps* deps) {
  FenceRef f = obj.move_fence();
  if (f != nullptr && (!f->IsSignaled() || !f->error().ok())) {
    deps->push_back(std::move(f));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<MemoryManager>> MemoryManager::Create(
    std::unique_ptr<FaultInjector> faults, std::unique_ptr<Device> device,
    ManagerOptions options) {
  if (faults == nullptr || device == nullptr) {
    return absl::InvalidArgumentError(
        "MemoryManager needs a device and a "
        "fault injector");
  }
  if (device->regions().empty()) {
    return absl::InvalidArgumentError("the device has no memory regions");
  }
  if (options.fence_history == 0) {
    return absl::InvalidArgumentError("fence_history must be at least 1");
  }
  return std::unique_ptr<MemoryManager>(new MemoryManager(
      std::move(faults), std::move(device), std::move(options)));
}

MemoryManager::MemoryManager(std::unique_ptr<FaultInjector> faults,
                             std::unique_ptr<Device> device,
                             ManagerOptions options)
    : options_(std::move(options)),
      faults_(std::move(faults)),
      device_(std::move(device)),
      queue_(std::make_unique<WorkQueue>("failsafe",
                                         std::max(1, options_.work_threads))),
      migrator_(std::make_unique<Migrator>(device_.get(), faults_.get(),
                                           queue_.get())),
      fences_(options_.fence_history) {
  uint64_t largest = 0;
  for (Region* r : device_->regions()) largest = std::max(largest, r->size());
  max_object_size_ = options_.max_object_size == 0
                         ? largest
                         : std::min(largest, options_.max_object_size);
}

MemoryManager::~MemoryManager() {
  shutting_down_.store(true, std::memory_order_release);
  device_->Shutdown();  // Every blit signals; failsafe works get queued.
  queue_->Shutdown();   // Every failsafe work runs and drops its tables.
  absl::flat_hash_map<uint64_t, BufferObjectRef> objects;
  {
    MutexLock lock(&mu_);
    objects.swap(objects_);
  }
  for (auto& [id, obj] : objects) obj->ClearPlacement();
}

absl::Status MemoryManager::CheckLive() const {
  if (shutting_down()) {
    return absl::UnavailableError("gpumigd is shutting down");
  }
  return absl::OkStatus();
}

absl::StatusOr<BufferObjectRef> MemoryManager::LookupLocked(
    const Principal& who, uint64_t id, bool content) {
  auto it = objects_.find(id);
  if (it == objects_.end()) {
    return absl::NotFoundError(absl::StrCat("no such object"));
  }
  const BufferObjectRef& obj = it->second;
  if (!obj->owner().SameOwner(who) && (content || !who.admin)) {
    return PermissionDenied();
  }
  return obj;
}

absl::StatusOr<BufferObjectRef> MemoryManager::Lookup(const Principal& who,
                                                      uint64_t id,
                                                      bool content) {
  MutexLock lock(&mu_);
  return LookupLocked(who, id, content);
}

absl::StatusOr<std::vector<Region*>> MemoryManager::ResolvePlacements(
    const std::vector<std::string>& names) const {
  std::vector<Region*> out;
  if (names.empty()) return device_->regions();
  absl::flat_hash_set<std::string> seen;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    const std::string field = absl::StrCat("placements[", i, "]");
    if (!seen.insert(name).second) {
      return FieldError(field,
                        absl::StrCat("region \"", name, "\" is listed twice"));
    }
    absl::StatusOr<Region*> r = device_->FindRegion(name);
    if (!r.ok()) {
      std::vector<std::string> known;
      for (Region* region : device_->regions()) known.push_back(region->name());
      return FieldError(field,
                        absl::StrCat("unknown region \"", name, "\" (regions: ",
                                     absl::StrJoin(known, ", "), ")"));
    }
    out.push_back(*r);
  }
  return out;
}

absl::StatusOr<std::vector<Region*>> MemoryManager::ValidateCreate(
    const CreateRequest& request) const {
  if (request.size == 0)
    return FieldError("size_bytes", "must be greater than 0");
  if (options_.page_bytes != 0 && request.size % options_.page_bytes != 0) {
    return FieldError("size_bytes",
                      absl::StrCat(request.size, " is not a multiple of ",
                                   options_.page_bytes));
  }
  if (request.size > max_object_size_) {
    return FieldError("size_bytes",
                      absl::StrCat(request.size,
                                   " is larger than the largest allowed "
                                   "object (",
                                   max_object_size_, " bytes)"));
  }
  absl::StatusOr<std::vector<Region*>> placements =
      ResolvePlacements(request.placements);
  if (!placements.ok()) return placements.status();
  if (request.require_cpu_access) {
    for (const Region* r : *placements) {
      if (r->kind() == RegionKind::kLmem && request.size > r->aperture()) {
        return FieldError(
            "size_bytes",
            absl::StrCat(request.size,
                         " bytes with require_cpu_access exceeds the CPU "
                         "aperture of ",
                         r->name(), " (", r->aperture(), " bytes)"));
      }
    }
  }
  if (request.label.size() > kMaxLabelBytes) {
    return FieldError("label",
                      absl::StrCat("longer than ", kMaxLabelBytes, " bytes"));
  }
  if (!IsUtf8(request.label)) return FieldError("label", "not valid UTF-8");
  return placements;
}

bool MemoryManager::CpuPlacementFor(const BufferObject& obj,
                                    const Region* region) const {
  return obj.require_cpu_access() && region->kind() == RegionKind::kLmem;
}

uint64_t MemoryManager::QuotaFor(const Principal& who) const {
  auto it = options_.quotas.find(who.name);
  return it == options_.quotas.end() ? options_.default_quota : it->second;
}

void MemoryManager::PlacedLocked(const BufferObject& obj) {
  Region* r = obj.region();
  if (r != nullptr && obj.pin_count() == 0 && !obj.unknown()) {
    r->LruTouch(obj.id());
  }
}

void MemoryManager::RegisterMove(const Migrator::Result& result, FenceKind kind,
                                 const BufferObject& obj,
                                 const FenceRef& previous) {
  fences_created_.fetch_add(1, std::memory_order_relaxed);
  fences_.Add(result.fence, kind, obj.id(), obj.owner().name, result.record);
  // The object names this fence (move_fence_id) now, and no longer the
  // previous one: keep the current one queryable whatever the history.
  fences_.Retain(result.fence->id());
  if (previous != nullptr) fences_.Release(previous->id());
}

void MemoryManager::RegisterExec(const FenceRef& fence, BufferObject& obj,
                                 BufferObject* other) {
  fences_created_.fetch_add(1, std::memory_order_relaxed);
  fences_.Add(fence, FenceKind::kExec, obj.id(), obj.owner().name, nullptr,
              obj.sg()->region()->name());
  for (BufferObject* o : {&obj, other}) {
    if (o == nullptr) continue;
    FenceRef previous = o->exec_fence();
    o->SetExecFence(fence);  // The object names it (last_fence_id): retain.
    fences_.Retain(fence->id());
    if (previous != nullptr) fences_.Release(previous->id());
  }
}

absl::StatusOr<FenceRef> MemoryManager::EvictLocked(
    const BufferObjectRef& victim, Region* from) {
  // The next allowed placement first, then any other allowed one.
  std::vector<Region*> targets;
  const auto& p = victim->placements();
  auto it = std::find(p.begin(), p.end(), from);
  if (it != p.end()) targets.insert(targets.end(), it + 1, p.end());
  for (Region* r : p) {
    if (r != from &&
        std::find(targets.begin(), targets.end(), r) == targets.end()) {
      targets.push_back(r);
    }
  }
  absl::Status last =
      absl::ResourceExhaustedError("object has no other allowed placement");
  for (Region* to : targets) {
    absl::StatusOr<SgTableRef> sg =
        to->Allocate(victim->size(), CpuPlacementFor(*victim, to));
    if (!sg.ok()) {
      last = sg.status();
      continue;
    }
    const FenceRef previous = victim->move_fence();
    absl::StatusOr<Migrator::EvictResult> res =
        migrator_->Evict(victim, *std::move(sg));
    if (!res.ok()) return res.status();
    from->LruRemove(victim->id());
    --placed_[from];
    ++placed_[to];
    PlacedLocked(*victim);
    RegisterMove(res->move, FenceKind::kEvict, *victim, previous);
    // The region timeline's fence, so RegionInfo::last_eviction_fence_id
    // names something FenceService can report. It belongs to the region,
    // not to the victim's owner: only admins may query it.
    fences_created_.fetch_add(1, std::memory_order_relaxed);
    fences_.Add(res->eviction_fence, FenceKind::kEvict, victim->id(),
                /*owner=*/"", res->move.record, from->name());
    return res->eviction_fence;
  }
  return last;
}

std::vector<BufferObjectRef> MemoryManager::VictimsLocked(
    Region* region, const BufferObject* exclude) {
  std::vector<BufferObjectRef> victims;
  for (uint64_t id : region->LruSnapshot()) {
    auto it = objects_.find(id);
    if (it == objects_.end()) continue;
    const BufferObjectRef& v = it->second;
    if (v.get() == exclude || v->pin_count() > 0 || v->unknown()) continue;
    if (batch_members_ != nullptr && batch_members_->contains(id)) continue;
    SgTableRef vsg = v->sg();
    if (vsg == nullptr || vsg->region() != region) continue;
    if (v->placements().size() < 2) continue;
    victims.push_back(v);
  }
  return victims;
}

absl::StatusOr<SgTableRef> MemoryManager::AllocateWithEviction(
    Region* region, uint64_t size, bool cpu, const BufferObject* exclude) {
  absl::StatusOr<SgTableRef> sg = region->Allocate(size, cpu);
  if (sg.ok() || !absl::IsResourceExhausted(sg.status())) return sg;

  // Would evicting everything evictable make enough room? If not, fail now
  // and change nothing.
  const uint64_t chunk = region->chunk_size();
  const uint64_t needed = (size + chunk - 1) / chunk * chunk;
  const uint64_t limit = cpu ? region->aperture() : region->size();
  std::vector<BufferObjectRef> victims = VictimsLocked(region, exclude);
  uint64_t reclaimable = region->FreeBytes(cpu);
  for (const BufferObjectRef& v : victims) {
    reclaimable += BytesBelow(*v->sg(), limit);
  }
  if (reclaimable < needed) {
    return absl::ResourceExhaustedError(
        absl::StrCat("region ", region->name(), ": no room for ", needed,
                     " bytes even after evicting every evictable object (",
                     reclaimable, " bytes could be made free",
                     cpu ? " inside the CPU aperture" : "", ")"));
  }
  eviction_passes_.fetch_add(1, std::memory_order_relaxed);
  for (const BufferObjectRef& v : victims) {
    if (!TryLockMutex(v->io_mu()))
      continue;  // Busy with IO: skip, as TTM does.
    absl::StatusOr<FenceRef> evicted = EvictLocked(v, region);
    UnlockMutex(v->io_mu());
    if (!evicted.ok()) continue;
    sg = region->Allocate(size, cpu);
    if (sg.ok()) return sg;
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("region ", region->name(), ": no room for ", needed,
                   " bytes: evictable objects were busy or had nowhere to go"));
}

void MemoryManager::EvictForBatchLocked(Region* region, uint64_t need,
                                        uint64_t need_cpu) {
  auto short_by = [&](bool cpu) {
    const uint64_t free = region->FreeBytes(cpu);
    const uint64_t want = cpu ? need_cpu : need;
    return free >= want ? 0 : want - free;
  };
  if (short_by(false) == 0 && short_by(true) == 0) return;
  std::vector<BufferObjectRef> victims = VictimsLocked(region, nullptr);
  if (victims.empty()) return;
  eviction_passes_.fetch_add(1, std::memory_order_relaxed);
  for (const BufferObjectRef& v : victims) {
    const bool total_short = short_by(false) > 0;
    const bool cpu_short = short_by(true) > 0;
    if (!total_short && !cpu_short) return;
    // Only the aperture is short: a victim wholly outside it frees nothing
    // the batch can use.
    if (!total_short && BytesBelow(*v->sg(), region->aperture()) == 0) {
      continue;
    }
    if (!TryLockMutex(v->io_mu())) continue;  // Busy with IO: skip.
    (void)EvictLocked(v, region);             // Nowhere to go: the next victim.
    UnlockMutex(v->io_mu());
  }
}

absl::StatusOr<MemoryManager::CreateResult> MemoryManager::CreateObject(
    const Principal& who, const CreateRequest& request) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  absl::StatusOr<std::vector<Region*>> placements = ValidateCreate(request);
  if (!placements.ok()) return placements.status();

  // Reserve the quota first; everything after this returns it on failure.
  {
    MutexLock lock(&mu_);
    if (absl::Status s = ReserveQuotaLocked(who, request.size); !s.ok()) {
      return s;
    }
  }
  absl::Cleanup unreserve = [this, &who, &request] {
    MutexLock lock(&mu_);
    UnreserveQuotaLocked(who.name, request.size);
  };
  auto obj = std::make_shared<BufferObject>(
      next_object_id_.fetch_add(1, std::memory_order_relaxed), request.size,
      *placements, who, request.label, request.require_cpu_access);

  // Nobody else can see the object until it is published below, so its
  // allocation (when no eviction is needed) and its clear need no lock of
  // ours: the global lock covers only the quota and the publication. The
  // first placement with room as it stands is taken at once; if the
  // preferred one is full, the slow path below evicts, in placement order,
  // under the lock.
  absl::StatusOr<SgTableRef> sg = placements->front()->Allocate(
      request.size, CpuPlacementFor(*obj, placements->front()));
  if (!sg.ok()) {
    MutexLock lock(&mu_);
    sg = AllocateInPlacementsLocked(*obj, *placements);
  }
  if (!sg.ok()) return sg.status();
  absl::StatusOr<Migrator::Result> cleared =
      migrator_->Clear(obj, *std::move(sg));
  if (!cleared.ok()) return cleared.status();

  std::move(unreserve).Cancel();
  MutexLock lock(&mu_);
  PublishLocked(obj, request.pin, *cleared);
  return CreateResult{obj->id(), cleared->fence->id()};
}

absl::Status MemoryManager::ReserveQuotaLocked(const Principal& who,
                                               uint64_t size) {
  const uint64_t quota = QuotaFor(who);
  uint64_t& used = usage_[who.name];
  if (quota != 0 && (size > quota || used > quota - size)) {
    const uint64_t in_use = used;
    if (used == 0) usage_.erase(who.name);
    return absl::ResourceExhaustedError(
        absl::StrCat("quota exceeded for ", who.name, ": ", in_use, " of ",
                     quota, " bytes in use, ", size, " more requested"));
  }
  used += size;
  return absl::OkStatus();
}

void MemoryManager::UnreserveQuotaLocked(const std::string& owner,
                                         uint64_t size) {
  uint64_t& used = usage_[owner];
  used -= std::min(used, size);
  if (used == 0) usage_.erase(owner);
}

absl::StatusOr<SgTableRef> MemoryManager::AllocateInPlacementsLocked(
    const BufferObject& obj, const std::vector<Region*>& placements) {
  absl::Status last = absl::ResourceExhaustedError("no placement has room");
  for (Region* region : placements) {
    absl::StatusOr<SgTableRef> sg = AllocateWithEviction(
        region, obj.size(), CpuPlacementFor(obj, region), &obj);
    if (sg.ok()) return sg;
    last = sg.status();
  }
  if (absl::IsInvalidArgument(last) && placements.size() > 1) {
    last = absl::InvalidArgumentError(absl::StrCat(
        "no placement can hold ", obj.size(), " bytes: ", last.message()));
  }
  return last;
}

void MemoryManager::PublishLocked(const BufferObjectRef& obj, bool pin,
                                  const Migrator::Result& cleared) {
  objects_[obj->id()] = obj;
  ++placed_[obj->region()];
  if (pin) obj->Pin();
  PlacedLocked(*obj);
  RegisterMove(cleared, FenceKind::kClear, *obj, nullptr);
}

absl::StatusOr<MemoryManager::CreateResult> MemoryManager::CreateLocked(
    const Principal& who, const CreateRequest& request,
    const std::vector<Region*>& placements) {
  if (absl::Status s = ReserveQuotaLocked(who, request.size); !s.ok()) {
    return s;
  }
  absl::Cleanup unreserve = [this, &who, &request]()
                                ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                  UnreserveQuotaLocked(who.name, request.size);
                                };
  auto obj = std::make_shared<BufferObject>(
      next_object_id_.fetch_add(1, std::memory_order_relaxed), request.size,
      placements, who, request.label, request.require_cpu_access);
  absl::StatusOr<SgTableRef> sg = AllocateInPlacementsLocked(*obj, placements);
  if (!sg.ok()) return sg.status();
  absl::StatusOr<Migrator::Result> cleared =
      migrator_->Clear(obj, *std::move(sg));
  if (!cleared.ok()) return cleared.status();
  std::move(unreserve).Cancel();
  PublishLocked(obj, request.pin, *cleared);
  return CreateResult{obj->id(), cleared->fence->id()};
}

absl::Status MemoryManager::DestroyObject(const Principal& who, uint64_t id) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  absl::StatusOr<BufferObjectRef> o;
  {
    MutexLock lock(&mu_);
    o = UnpublishLocked(who, id);
  }
  if (!o.ok()) return o.status();
  FinishDestroy(*o);
  return absl::OkStatus();
}

absl::StatusOr<BufferObjectRef> MemoryManager::UnpublishLocked(
    const Principal& who, uint64_t id) {
  absl::StatusOr<BufferObjectRef> obj = LookupLocked(who, id, false);
  if (!obj.ok()) return obj.status();
  BufferObjectRef o = *std::move(obj);
  // Unreachable from here on: no new move, Exec or IO can start on it.
  objects_.erase(id);
  o->MarkDestroyed();
  if (Region* r = o->region()) {
    r->LruRemove(o->id());
    --placed_[r];
  }
  UnreserveQuotaLocked(o->owner().name, o->size());
  return o;
}

void MemoryManager::FinishDestroy(const BufferObjectRef& o) {
  // IO already under way finishes first (it holds io_mu), without holding
  // up the rest of the manager. The table's blocks return once queued blits
  // and failsafe works drop it.
  MutexLock io(o->io_mu());
  o->ClearPlacement();
  for (const FenceRef& f : {o->move_fence(), o->exec_fence()}) {
    if (f != nullptr) fences_.Release(f->id());
  }
}

ObjectInfo MemoryManager::InfoOf(const BufferObject& obj) const {
  ObjectInfo info;
  info.id = obj.id();
  info.size = obj.size();
  for (Region* r : obj.placements()) info.placements.push_back(r->name());
  SgTableRef sg = obj.sg();
  if (sg != nullptr) {
    info.region = sg->region()->name();
    info.cpu_accessible = sg->cpu_accessible();
  }
  info.state = obj.state();
  if (obj.unknown()) {
    info.unknown_reason = obj.unknown_reason();
    info.unknown_fence_id = obj.unknown_fence_id();
  }
  info.pin_count = obj.pin_count();
  info.label = obj.label();
  info.owner = obj.owner().name;
  info.move_fence_id = FenceId(obj.move_fence());
  info.exec_fence_id = FenceId(obj.exec_fence());
  info.created = obj.create_time();
  info.require_cpu_access = obj.require_cpu_access();
  return info;
}

absl::StatusOr<ObjectInfo> MemoryManager::GetObject(const Principal& who,
                                                    uint64_t id) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  absl::StatusOr<BufferObjectRef> obj = Lookup(who, id, false);
  if (!obj.ok()) return obj.status();
  return InfoOf(**obj);
}

std::vector<ObjectInfo> MemoryManager::ListObjects(const Principal& who,
                                                   bool all) {
  std::vector<BufferObjectRef> objs;
  {
    MutexLock lock(&mu_);
    for (const auto& [id, obj] : objects_) {
      if (obj->owner().SameOwner(who) || (all && who.admin)) {
        objs.push_back(obj);
      }
    }
  }
  std::sort(objs.begin(), objs.end(),
            [](const BufferObjectRef& a, const BufferObjectRef& b) {
              return a->id() < b->id();
            });
  std::vector<ObjectInfo> out;
  out.reserve(objs.size());
  for (const auto& obj : objs) out.push_back(InfoOf(*obj));
  return out;
}

absl::Status MemoryManager::LockForIo(const BufferObjectRef& obj,
                                      absl::Time deadline) {
  for (;;) {
    for (const FenceRef& f : {obj->move_fence(), obj->exec_fence()}) {
      if (f != nullptr && !f->WaitUntil(deadline)) {
        return absl::DeadlineExceededError(
            "deadline passed while waiting for the object's pending "
            "migration or engine command");
      }
    }
    LockMutex(obj->io_mu());
    FenceRef m = obj->move_fence();
    FenceRef e = obj->exec_fence();
    if ((m == nullptr || m->IsSignaled()) &&
        (e == nullptr || e->IsSignaled())) {
      return absl::OkStatus();
    }
    UnlockMutex(obj->io_mu());  // A new move was queued meanwhile: wait again.
  }
}

absl::Status MemoryManager::DoIo(const BufferObjectRef& obj, uint64_t offset,
                                 uint64_t length, const uint8_t* in,
                                 uint8_t* out, absl::Time deadline) {
  if (absl::Status s = obj->CheckAccess(); !s.ok()) return s;
  if (absl::Status s = CheckRange("offset", obj->size(), offset, length);
      !s.ok()) {
    return s;
  }
  if (length == 0) return absl::OkStatus();
  if (absl::Status s = LockForIo(obj, deadline); !s.ok()) return s;
  // Held since LockForIo succeeded (see its comment on the analysis).
  absl::Cleanup unlock = [&obj]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    UnlockMutex(obj->io_mu());
  };
  if (obj->destroyed()) return absl::NotFoundError("no such object");
  // Observed the move fence signalled (acquire): the unknown flag is final.
  if (absl::Status s = obj->CheckAccess(); !s.ok()) return s;
  SgTableRef sg = obj->sg();
  if (sg->cpu_accessible()) {
    absl::StatusOr<std::vector<absl::Span<uint8_t>>> spans =
        device_->CpuMap(*sg, offset, length);
    if (!spans.ok()) return spans.status();
    uint64_t done = 0;
    for (absl::Span<uint8_t> span : *spans) {
      if (in != nullptr) {
        std::memcpy(span.data(), in + done, span.size());
      } else {
        std::memcpy(out + done, span.data(), span.size());
      }
      done += span.size();
    }
  } else {
    // Outside the aperture: a blit to or from host memory. The engine owns
    // the buffer until its fence signals, so wait for it whatever the
    // deadline (engine commands complete in bounded time).
    FenceRef f =
        in != nullptr
            ? device_->engine().WriteFromHost(in, sg, offset, length, {})
            : device_->engine().ReadToHost(sg, offset, length, out, {});
    f->Wait();
    if (!f->error().ok()) {
      // ABORTED, not the engine's own code (INTERNAL): the transfer failed
      // partway and the caller should retry (a Write: the same bytes); it is
      // not a daemon bug (docs/api.md, "Errors").
      return absl::AbortedError(
          absl::StrCat("copy engine transfer failed: ", f->error().message()));
    }
  }
  if (obj->pin_count() == 0) sg->region()->LruTouch(obj->id());
  return absl::OkStatus();
}

absl::Status MemoryManager::Write(const Principal& who, uint64_t id,
                                  uint64_t offset,
                                  absl::Span<const uint8_t> data,
                                  absl::Time deadline) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  absl::StatusOr<BufferObjectRef> obj = Lookup(who, id, true);
  if (!obj.ok()) return obj.status();
  return DoIo(*obj, offset, data.size(), data.data(), nullptr, deadline);
}

absl::Status MemoryManager::Read(const Principal& who, uint64_t id,
                                 uint64_t offset, absl::Span<uint8_t> out,
                                 absl::Time deadline) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  absl::StatusOr<BufferObjectRef> obj = Lookup(who, id, true);
  if (!obj.ok()) return obj.status();
  return DoIo(*obj, offset, out.size(), nullptr, out.data(), deadline);
}

absl::StatusOr<uint64_t> MemoryManager::ResolveRange(const Principal& who,
                                                     uint64_t id,
                                                     uint64_t offset,
                                                     uint64_t length) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  absl::StatusOr<BufferObjectRef> obj = Lookup(who, id, true);
  if (!obj.ok()) return obj.status();
  if (absl::Status s = (*obj)->CheckAccess(); !s.ok()) return s;
  return ResolveLength("offset", (*obj)->size(), offset, length);
}

absl::StatusOr<uint64_t> MemoryManager::Migrate(const Principal& who,
                                                uint64_t id,
                                                absl::string_view region) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (region.empty()) return FieldError("region", "required");
  absl::StatusOr<Region*> target = device_->FindRegion(region);
  if (!target.ok()) {
    return FieldError("region",
                      absl::StrCat("unknown region \"", region, "\""));
  }
  MutexLock lock(&mu_);
  return MigrateLocked(who, id, *target, nullptr, nullptr);
}

absl::StatusOr<uint64_t> MemoryManager::MigrateLocked(
    const Principal& who, uint64_t id, Region* target, FenceRef* fence,
    std::shared_ptr<MoveRecord>* record) {
  absl::string_view region = target->name();
  absl::StatusOr<BufferObjectRef> found = LookupLocked(who, id, true);
  if (!found.ok()) return found.status();
  const BufferObjectRef& obj = *found;
  if (absl::Status s = obj->CheckAccess(); !s.ok()) return s;
  if (!obj->AllowedIn(target)) {
    return FieldError("region",
                      absl::StrCat("region \"", region,
                                   "\" is not in the object's placement list"));
  }
  if (obj->region() == target) {
    if (fence != nullptr) *fence = obj->move_fence();
    return FenceId(obj->move_fence());
  }
  if (obj->pin_count() > 0) {
    return absl::FailedPreconditionError(
        "object is pinned; unpin it before migrating");
  }
  MutexLock io(obj->io_mu());
  if (obj->destroyed()) return absl::NotFoundError("no such object");
  Region* from = obj->region();
  absl::StatusOr<SgTableRef> sg = AllocateWithEviction(
      target, obj->size(), CpuPlacementFor(*obj, target), obj.get());
  if (!sg.ok()) return sg.status();
  const FenceRef previous = obj->move_fence();
  absl::StatusOr<Migrator::Result> moved =
      migrator_->Migrate(obj, *std::move(sg));
  if (!moved.ok()) return moved.status();
  if (from != nullptr) {
    from->LruRemove(obj->id());
    --placed_[from];
  }
  ++placed_[target];
  PlacedLocked(*obj);
  RegisterMove(*moved, FenceKind::kMigrate, *obj, previous);
  if (fence != nullptr) *fence = moved->fence;
  if (record != nullptr) *record = moved->record;
  return moved->fence->id();
}

absl::StatusOr<int> MemoryManager::Pin(const Principal& who, uint64_t id) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  MutexLock lock(&mu_);
  absl::StatusOr<BufferObjectRef> obj = LookupLocked(who, id, true);
  if (!obj.ok()) return obj.status();
  if (absl::Status s = (*obj)->CheckAccess(); !s.ok()) return s;
  if ((*obj)->pin_count() >= kMaxPinCount) {
    return absl::ResourceExhaustedError("the pin count would overflow");
  }
  const int count = (*obj)->Pin();
  if (Region* r = (*obj)->region()) r->LruRemove((*obj)->id());
  return count;
}

absl::StatusOr<int> MemoryManager::Unpin(const Principal& who, uint64_t id) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  MutexLock lock(&mu_);
  absl::StatusOr<BufferObjectRef> obj = LookupLocked(who, id, true);
  if (!obj.ok()) return obj.status();
  const int count = (*obj)->Unpin();
  if (count < 0) {
    return absl::FailedPreconditionError("object is not pinned");
  }
  if (count == 0) PlacedLocked(**obj);
  return count;
}

absl::StatusOr<uint64_t> MemoryManager::ExecFill(const Principal& who,
                                                 uint64_t id, uint64_t offset,
                                                 uint64_t length,
                                                 uint8_t value) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  MutexLock lock(&mu_);
  absl::StatusOr<FenceRef> f = ExecFillLocked(who, id, offset, length, value);
  if (!f.ok()) return f.status();
  return (*f)->id();
}

absl::StatusOr<FenceRef> MemoryManager::ExecFillLocked(const Principal& who,
                                                       uint64_t id,
                                                       uint64_t offset,
                                                       uint64_t length,
                                                       uint8_t value) {
  absl::StatusOr<BufferObjectRef> found = LookupLocked(who, id, true);
  if (!found.ok()) return found.status();
  const BufferObjectRef& obj = *found;
  if (absl::Status s = obj->CheckAccess(); !s.ok()) return s;
  absl::StatusOr<uint64_t> n =
      ResolveLength("offset", obj->size(), offset, length);
  if (!n.ok()) return n.status();
  length = *n;
  MutexLock io(obj->io_mu());
  CopyEngine::Deps deps;
  AddMoveDep(*obj, &deps);
  SgTableRef sg = obj->sg();
  FenceRef f =
      device_->engine().Fill(sg, offset, length, value, std::move(deps));
  RegisterExec(f, *obj, nullptr);
  PlacedLocked(*obj);
  return f;
}

absl::StatusOr<uint64_t> MemoryManager::ExecCopy(const Principal& who,
                                                 uint64_t src, uint64_t dst,
                                                 uint64_t src_offset,
                                                 uint64_t dst_offset,
                                                 uint64_t length) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  MutexLock lock(&mu_);
  absl::StatusOr<FenceRef> f =
      ExecCopyLocked(who, src, dst, src_offset, dst_offset, length);
  if (!f.ok()) return f.status();
  return (*f)->id();
}

absl::StatusOr<FenceRef> MemoryManager::ExecCopyLocked(
    const Principal& who, uint64_t src, uint64_t dst, uint64_t src_offset,
    uint64_t dst_offset, uint64_t length) {
  absl::StatusOr<BufferObjectRef> s_obj = LookupLocked(who, src, true);
  if (!s_obj.ok()) return s_obj.status();
  absl::StatusOr<BufferObjectRef> d_obj = LookupLocked(who, dst, true);
  if (!d_obj.ok()) return d_obj.status();
  for (const BufferObjectRef& o : {*s_obj, *d_obj}) {
    if (absl::Status s = o->CheckAccess(); !s.ok()) return s;
  }
  absl::StatusOr<uint64_t> n =
      ResolveLength("src_offset", (*s_obj)->size(), src_offset, length);
  if (!n.ok()) return n.status();
  length = *n;
  if (dst_offset > (*d_obj)->size() || length > (*d_obj)->size() - dst_offset) {
    return absl::OutOfRangeError(absl::StrCat(
        "dst_offset: [", dst_offset, ", +", length,
        ") is beyond the destination's ", (*d_obj)->size(), " bytes"));
  }
  if (src == dst && src_offset < dst_offset + length &&
      dst_offset < src_offset + length) {
    return FieldError("copy",
                      "source and destination ranges of one object overlap");
  }
  // Lock order: lower object id first.
  BufferObject* first = src <= dst ? s_obj->get() : d_obj->get();
  BufferObject* second = src <= dst ? d_obj->get() : s_obj->get();
  MutexLock io1(first->io_mu());
  std::optional<MutexLock> io2;
  if (second != first) io2.emplace(second->io_mu());
  CopyEngine::Deps deps;
  AddMoveDep(**s_obj, &deps);
  if (src != dst) AddMoveDep(**d_obj, &deps);
  SgTableRef dsg = (*d_obj)->sg();
  FenceRef f = device_->engine().Copy((*s_obj)->sg(), src_offset, dsg,
                                      dst_offset, length, std::move(deps));
  RegisterExec(f, **d_obj, src != dst ? s_obj->get() : nullptr);
  PlacedLocked(**s_obj);
  PlacedLocked(**d_obj);
  return f;
}

absl::StatusOr<FenceRef> MemoryManager::ExecChecksumLocked(
    const Principal& who, uint64_t id, uint64_t offset, uint64_t length,
    std::shared_ptr<uint64_t> result) {
  absl::StatusOr<BufferObjectRef> found = LookupLocked(who, id, true);
  if (!found.ok()) return found.status();
  const BufferObjectRef& obj = *found;
  if (absl::Status s = obj->CheckAccess(); !s.ok()) return s;
  absl::StatusOr<uint64_t> n =
      ResolveLength("offset", obj->size(), offset, length);
  if (!n.ok()) return n.status();
  length = *n;
  MutexLock io(obj->io_mu());
  CopyEngine::Deps deps;
  AddMoveDep(*obj, &deps);
  SgTableRef sg = obj->sg();
  FenceRef f = device_->engine().Checksum(sg, offset, length, std::move(result),
                                          std::move(deps));
  RegisterExec(f, *obj, nullptr);
  return f;
}

absl::StatusOr<MemoryManager::ChecksumResult> MemoryManager::ExecChecksum(
    const Principal& who, uint64_t id, uint64_t offset, uint64_t length,
    absl::Time deadline) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  auto result = std::make_shared<uint64_t>(0);
  FenceRef f;
  {
    MutexLock lock(&mu_);
    absl::StatusOr<FenceRef> submitted =
        ExecChecksumLocked(who, id, offset, length, result);
    if (!submitted.ok()) return submitted.status();
    f = *std::move(submitted);
  }
  if (!f->WaitUntil(deadline)) {
    return absl::DeadlineExceededError(
        "deadline passed before the checksum finished");
  }
  ChecksumResult out;
  out.fence_id = f->id();
  out.error = f->error();
  if (out.error.ok()) out.checksum = *result;
  return out;
}

absl::StatusOr<FenceInfo> MemoryManager::GetFence(const Principal& who,
                                                  uint64_t fence_id) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  absl::StatusOr<FenceInfo> info = fences_.Get(fence_id);
  if (!info.ok()) return info.status();
  if (info->owner != who.name && !who.admin) return PermissionDenied();
  return info;
}

absl::StatusOr<FenceInfo> MemoryManager::WaitFence(const Principal& who,
                                                   uint64_t fence_id,
                                                   absl::Time deadline) {
  absl::StatusOr<FenceInfo> info = GetFence(who, fence_id);
  if (!info.ok() || info->signaled) return info;
  absl::StatusOr<FenceRef> f = fences_.GetFence(fence_id);
  if (!f.ok()) return f.status();
  if (!(*f)->WaitUntil(deadline)) {
    return absl::DeadlineExceededError(
        absl::StrCat("fence ", fence_id, " has not signalled yet"));
  }
  absl::StatusOr<FenceInfo> after = fences_.Get(fence_id);
  if (after.ok()) return after;
  // Forgotten between the signal and now (history full): report the fence.
  info->signaled = true;
  info->error = (*f)->error();
  info->signaled_at = (*f)->signal_time();
  return info;
}

std::vector<RegionInfo> MemoryManager::ListRegions() {
  std::vector<RegionInfo> out;
  for (Region* r : device_->regions()) {
    absl::StatusOr<RegionInfo> info = GetRegion(r->name());
    if (info.ok()) out.push_back(*std::move(info));
  }
  return out;
}

absl::StatusOr<RegionInfo> MemoryManager::GetRegion(absl::string_view name) {
  absl::StatusOr<Region*> found = device_->FindRegion(name);
  if (!found.ok()) {
    return absl::NotFoundError(absl::StrCat("no region named \"", name, "\""));
  }
  Region* r = *found;
  RegionInfo info;
  info.name = r->name();
  info.kind = r->kind();
  info.size = r->size();
  info.aperture = r->aperture();
  info.chunk_size = r->chunk_size();
  info.usage = r->Usage();
  {
    MutexLock lock(&mu_);
    auto it = placed_.find(r);
    if (it != placed_.end()) info.objects = it->second;
    // Unknown-state objects are rare and stay until destroyed: scanning for
    // them is the cheap way to a "now" figure (the counter is cumulative).
    for (const auto& [id, obj] : objects_) {
      if (obj->unknown() && obj->region() == r) ++info.unknown_objects;
    }
  }
  static_cast<RegionCounters&>(info) = r->CountersSnapshot();
  info.eviction_timeline_seqno = r->eviction_timeline().last_seqno();
  info.last_eviction_fence_id = FenceId(r->eviction_timeline().last_fence());
  return info;
}

absl::StatusOr<MemoryManager::EvictResult> MemoryManager::EvictRegion(
    absl::string_view name) {
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  absl::StatusOr<Region*> found = device_->FindRegion(name);
  if (!found.ok()) {
    return absl::NotFoundError(absl::StrCat("no region named \"", name, "\""));
  }
  Region* region = *found;
  EvictResult result;
  MutexLock lock(&mu_);
  std::vector<BufferObjectRef> placed;
  for (const auto& [id, obj] : objects_) {
    if (obj->region() == region) placed.push_back(obj);
  }
  std::sort(placed.begin(), placed.end(),
            [](const BufferObjectRef& a, const BufferObjectRef& b) {
              return a->id() < b->id();
            });
  for (const BufferObjectRef& obj : placed) {
    if (obj->pin_count() > 0 || obj->unknown() || !TryLockMutex(obj->io_mu())) {
      ++result.objects_skipped;
      continue;
    }
    absl::StatusOr<FenceRef> evicted = EvictLocked(obj, region);
    UnlockMutex(obj->io_mu());
    if (!evicted.ok()) {
      ++result.objects_skipped;
      continue;
    }
    ++result.objects_evicted;
    result.bytes_evicted += obj->size();
  }
  result.last_fence_id = FenceId(region->eviction_timeline().last_fence());
  return result;
}

ManagerStats MemoryManager::Stats() {
  ManagerStats s;
  {
    MutexLock lock(&mu_);
    s.objects = objects_.size();
    for (const auto& [id, obj] : objects_) {
      s.object_bytes += obj->size();
      if (obj->unknown()) ++s.unknown_state_objects;
    }
  }
  s.fences_created = fences_created_.load(std::memory_order_relaxed);
  s.fences_pending = fences_.pending();
  s.fence_history = fences_.size();
  s.watchers = fences_.subscribers();
  s.engine_inflight = device_->engine().inflight();
  s.engine_wedged = faults_->AnyWedgeActive();
  s.eviction_passes = eviction_passes_.load(std::memory_order_relaxed);
  return s;
}

bool MemoryManager::Shutdown(absl::Time deadline) {
  shutting_down_.store(true, std::memory_order_release);
  return fences_.WaitAllSignaled(deadline);
}

absl::Status MemoryManager::CheckInvariantsForTest() {
  // Destroyed objects' memory returns when their last blit and failsafe work
  // finish (both release before they signal): let in-flight work drain.
  if (!fences_.WaitAllSignaled(absl::Now() + absl::Seconds(30))) {
    return absl::DeadlineExceededError("fences still pending after 30 s");
  }
  MutexLock lock(&mu_);
  for (Region* r : device_->regions()) {
    if (absl::Status s = r->CheckInvariantsForTest(); !s.ok()) return s;
    uint64_t placed = 0, count = 0;
    for (const auto& [id, obj] : objects_) {
      SgTableRef sg = obj->sg();
      if (sg != nullptr && sg->region() == r) {
        placed += sg->size();
        ++count;
      }
    }
    auto pit = placed_.find(r);
    if (count != (pit == placed_.end() ? 0 : pit->second)) {
      return absl::InternalError(absl::StrCat("region ", r->name(), ": ", count,
                                              " objects placed, ",
                                              "counter says otherwise"));
    }
    const RegionUsage u = r->Usage();
    if (u.allocated_bytes < placed) {
      return absl::InternalError(
          absl::StrCat("region ", r->name(), ": ", u.allocated_bytes,
                       " bytes allocated but objects hold ", placed));
    }
    if (objects_.empty() && u.allocated_bytes != 0) {
      return absl::InternalError(
          absl::StrCat("region ", r->name(), ": ", u.allocated_bytes,
                       " bytes still allocated with no objects"));
    }
  }
  return absl::OkStatus();
}

}  // namespace gpumig
