#include "tests/torture/campaign_batch.h"

#include <algorithm>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "tests/torture/pattern.h"

namespace gpumig::torture {
namespace {

constexpr size_t kMaxObjects = 48;
constexpr int kMaxCreate = 16;

std::string Code(const absl::Status& s) {
  return absl::StatusCodeToString(s.code());
}

bool SameError(const absl::Status& a, const absl::Status& b) {
  return a.code() == b.code() && a.message() == b.message();
}

}  // namespace

BatchClient::BatchClient(Campaign* campaign, int index,
                         std::unique_ptr<client::Client> client)
    : c_(*campaign),
      index_(index),
      rng_(DeriveSeed(campaign->options().seed, 0xba7c4 + index)),
      cl_(std::move(client)) {}

client::CallOptions BatchClient::Call() const {
  client::CallOptions call;
  call.timeout = c_.options().rpc_timeout;
  return call;
}

bool BatchClient::Note(const char* method, const absl::Status& s) {
  MethodStats& m = stats_.rpcs[method];
  ++m.calls;
  if (!s.ok()) {
    ++m.errors[Code(s)];
    c_.NoteStatus(s);
  }
  return s.ok();
}

void BatchClient::Violation(const std::string& check, const std::string& key,
                            const std::string& what) {
  c_.AddViolation(check, key, absl::StrCat("batch client: ", what));
}

void BatchClient::Run() {
  while (!c_.stopping() && !c_.unavailable() && c_.TakeOp()) {
    Round();
    ++stats_.ops;
  }
  if (!c_.unavailable()) {
    c_.faults_cleared().WaitForNotificationWithTimeout(absl::Seconds(30));
    CheckContent("the final pass");
    DestroyAll();
  }
}

void BatchClient::Round() {
  if (objects_.size() < kMaxObjects) CreateSome();
  if (objects_.empty() || c_.unavailable()) return;
  const uint64_t pick = rng_.Below(8);
  if (pick < 4) {
    MigrateSome();
  } else if (pick < 7) {
    ExecSome();
  } else {
    CheckContent("a batch round");
    DestroyAll();
    return;
  }
  CheckContent(pick < 4 ? "MigrateBatch" : "ExecBatch");
}

void BatchClient::CreateSome() {
  const int n = static_cast<int>(rng_.Between(1, kMaxCreate));
  std::vector<client::CreateObjectOptions> entries(n);
  for (auto& e : entries) {
    e.size_bytes = 4096 * rng_.Between(1, 16);
    e.placements =
        rng_.Below(2) == 0
            ? std::vector<std::string>{c_.layout().lmem, c_.layout().smem}
            : std::vector<std::string>{c_.layout().smem, c_.layout().lmem};
    e.require_cpu_access = rng_.Below(4) == 0;
  }
  ++stats_.ops_by_kind["batch_create"];
  absl::StatusOr<client::BatchResult> r =
      cl_->CreateBatch(entries, /*wait=*/true, Call());
  if (!Note("CreateBatch", r.status())) return;
  if (!CheckArray("CreateBatch", entries.size(), *r)) return;
  for (size_t i = 0; i < r->entries.size(); ++i) {
    const client::BatchEntryResult& e = r->entries[i];
    if (!e.status.ok()) {
      if (!absl::IsResourceExhausted(e.status) && !absl::IsAborted(e.status)) {
        Violation(
            "contract", "batch-entry-code",
            absl::StrCat("CreateBatch entry ", i, ": ", e.status.ToString()));
      }
      continue;
    }
    Obj o;
    o.handle = e.handle;
    o.serial = next_serial_++;
    o.size = entries[i].size_bytes;
    o.shadow.assign(o.size, 0);
    ++stats_.objects_created;
    // A pattern of this object, so a later read tells whose bytes it got.
    std::vector<uint8_t> data(o.size);
    o.version = 1;
    FillPattern(c_.options().seed, static_cast<uint32_t>(index_), o.serial,
                o.version, 0, absl::MakeSpan(data));
    absl::StatusOr<uint64_t> w = cl_->Write(o.handle, data, 0, Call());
    Note("Write", w.status());
    if (w.ok() && *w == o.size) {
      o.shadow = std::move(data);
      stats_.bytes_written += o.size;
    } else {
      o.uncertain = true;  // A prefix may be written.
    }
    objects_.push_back(std::move(o));
  }
}

void BatchClient::MigrateSome() {
  std::vector<client::MigrateBatchEntry> entries;
  std::vector<size_t> which;
  for (size_t i = 0; i < objects_.size(); ++i) {
    if (rng_.Below(3) == 0) continue;
    client::MigrateBatchEntry e;
    e.handle = objects_[i].handle;
    if (rng_.Below(4) == 0) {
      e.region = rng_.Below(2) == 0 ? c_.layout().lmem : c_.layout().smem;
    }
    entries.push_back(std::move(e));
    which.push_back(i);
  }
  if (entries.empty()) return;
  const std::string region =
      rng_.Below(2) == 0 ? c_.layout().lmem : c_.layout().smem;
  ++stats_.ops_by_kind["batch_migrate"];
  absl::StatusOr<client::BatchResult> r =
      cl_->MigrateBatch(entries, region, /*wait=*/true, Call());
  if (!Note("MigrateBatch", r.status())) return;
  if (!CheckArray("MigrateBatch", entries.size(), *r)) return;
  for (size_t k = 0; k < r->entries.size(); ++k) {
    const client::BatchEntryResult& e = r->entries[k];
    Obj& o = objects_[which[k]];
    if (e.status.ok()) continue;
    switch (e.status.code()) {
      case absl::StatusCode::kDataLoss:
        o.uncertain = true;
        break;
      case absl::StatusCode::kResourceExhausted:
      case absl::StatusCode::kAborted:
        break;
      default:
        Violation("contract", "batch-entry-code",
                  absl::StrCat("MigrateBatch entry ", k, " (", o.handle,
                               "): ", e.status.ToString()));
    }
  }
}

void BatchClient::ExecSome() {
  // Per chosen object: a Fill of a random range, then a Checksum of the
  // whole object -- which must see the fill (request order).
  std::vector<client::ExecCommand> cmds;
  struct Planned {
    size_t obj;
    uint64_t offset, length;
    uint8_t value;
  };
  std::vector<Planned> plans;
  for (size_t i = 0; i < objects_.size() && plans.size() < 8; ++i) {
    if (rng_.Below(2) == 0) continue;
    const Obj& o = objects_[i];
    Planned p{i, rng_.Below(o.size), 0,
              static_cast<uint8_t>(rng_.Between(1, 255))};
    p.length = rng_.Between(1, o.size - p.offset);
    client::FillOptions fill;
    fill.handle = o.handle;
    fill.value = p.value;
    fill.offset = p.offset;
    fill.length = p.length;
    cmds.push_back(fill);
    client::ChecksumOptions sum;
    sum.handle = o.handle;
    cmds.push_back(sum);
    plans.push_back(p);
  }
  if (cmds.empty()) return;
  ++stats_.ops_by_kind["batch_exec"];
  absl::StatusOr<client::BatchResult> r =
      cl_->ExecBatch(cmds, /*wait=*/false, Call());  // Checksums wait.
  if (!Note("ExecBatch", r.status())) return;
  if (!r->fence.has_value()) {
    Violation("contract", "batch-checksum-no-wait",
              "ExecBatch with Checksums returned before its array signalled");
    return;
  }
  if (!CheckArray("ExecBatch", cmds.size(), *r)) return;
  for (size_t k = 0; k < plans.size(); ++k) {
    Obj& o = objects_[plans[k].obj];
    const client::BatchEntryResult& fill = r->entries[2 * k];
    const client::BatchEntryResult& sum = r->entries[2 * k + 1];
    if (!fill.status.ok() || !sum.status.ok()) {
      if (!absl::IsDataLoss(fill.status) && !fill.status.ok()) {
        Violation("contract", "batch-entry-code",
                  absl::StrCat("ExecBatch fill ", o.handle, ": ",
                               fill.status.ToString()));
      }
      o.uncertain = true;
      continue;
    }
    absl::StatusOr<client::FenceStatus> f =
        cl_->GetFence(fill.fence_id, Call());
    if (!Note("GetFence", f.status())) {
      ++stats_.fences_aged_out;
      o.uncertain = true;
      continue;
    }
    if (!f->error.ok()) {  // No failsafe for Exec: old or new bytes.
      ++stats_.exec_failed;
      o.uncertain = true;
      continue;
    }
    std::fill(o.shadow.begin() + plans[k].offset,
              o.shadow.begin() + plans[k].offset + plans[k].length,
              plans[k].value);
    if (o.uncertain || !sum.checksum.has_value()) continue;
    stats_.bytes_checksummed += o.size;
    const uint64_t want = Fnv1a64(o.shadow);
    if (*sum.checksum != want) {
      Violation("content", "batch-checksum-mismatch",
                absl::StrCat(o.handle, ": ExecBatch checksum after its fill ",
                             *sum.checksum, ", shadow ", want));
      o.uncertain = true;
    }
  }
}

void BatchClient::DestroyAll() {
  std::vector<std::string> handles = std::move(doomed_);
  doomed_.clear();
  for (const Obj& o : objects_) handles.push_back(o.handle);
  objects_.clear();
  if (handles.empty()) return;
  ++stats_.ops_by_kind["batch_destroy"];
  absl::StatusOr<client::BatchResult> r =
      cl_->DestroyBatch(handles, /*wait=*/true, Call());
  if (!Note("DestroyBatch", r.status())) return;
  for (size_t i = 0; i < r->entries.size(); ++i) {
    if (!r->entries[i].status.ok()) {
      Violation("contract", "batch-destroy-failed",
                absl::StrCat("DestroyBatch of own ", handles[i], ": ",
                             r->entries[i].status.ToString()));
    } else {
      ++stats_.objects_destroyed;
    }
  }
  if (!r->fence.has_value() || !r->fence->signaled() ||
      !r->fence->array.has_value() || r->fence->array->pending != 0) {
    Violation("batch", "array-not-signalled",
              "DestroyBatch (wait) returned with its array pending");
  }
}

bool BatchClient::CheckArray(const char* method, size_t entries,
                             const client::BatchResult& r) {
  const std::string what = absl::StrCat(method, " array ", r.fence_id);
  if (r.entries.size() != entries || r.fence_id == 0 ||
      r.succeeded + r.failed != entries) {
    Violation("contract", "batch-results",
              absl::StrCat(what, ": ", entries, " entries, ", r.entries.size(),
                           " results, ", r.succeeded, "+", r.failed));
    return false;
  }
  if (!r.fence.has_value() || !r.fence->signaled()) {
    Violation("batch", "array-not-signalled",
              absl::StrCat(what, ": waited for, but not signalled"));
    return false;
  }
  const client::FenceStatus& array = *r.fence;
  if (!array.array.has_value()) {
    Violation("batch", "array-no-members",
              absl::StrCat(what, ": FenceStatus.array missing"));
    return false;
  }
  const client::FenceArrayInfo& info = *array.array;
  // (c) one member per submitted entry, in entry order; counts add up.
  std::vector<uint64_t> submitted;
  for (const client::BatchEntryResult& e : r.entries) {
    if (e.status.ok() != (e.fence_id != 0)) {
      Violation("contract", "batch-entry-fence",
                absl::StrCat(what, ": entry ", e.handle, " status ",
                             e.status.ToString(), " fence ", e.fence_id));
    }
    if (e.fence_id != 0 && std::find(submitted.begin(), submitted.end(),
                                     e.fence_id) == submitted.end()) {
      submitted.push_back(e.fence_id);
    }
  }
  if (info.member_fence_ids != submitted || info.members != submitted.size() ||
      info.pending != 0 ||
      info.blit_ok + info.fallback + info.unknown_state + info.failed !=
          info.members) {
    Violation(
        "batch", "array-counts",
        absl::StrCat(what, ": members ", info.members, " (",
                     info.member_fence_ids.size(), " ids, ", submitted.size(),
                     " submitted), ok ", info.blit_ok, " fallback ",
                     info.fallback, " unknown ", info.unknown_state, " failed ",
                     info.failed, " pending ", info.pending));
  }
  // (a) and (b): every member signalled, none after the array; the array's
  // error is a member's, OK iff all are.
  bool any_failed = false, carried = array.error.ok();
  int64_t carried_at = INT64_MAX, first_other_at = INT64_MAX;
  for (uint64_t id : info.member_fence_ids) {
    absl::StatusOr<client::FenceStatus> m = cl_->GetFence(id, Call());
    if (absl::IsNotFound(m.status())) {
      ++stats_.fences_aged_out;
      continue;
    }
    if (!Note("GetFence", m.status())) return false;
    ++stats_.outcomes[absl::StrCat("BATCH/", FenceOutcomeName(m->outcome))];
    if (!m->signaled() || m->signaled_unix_nanos > array.signaled_unix_nanos) {
      Violation("batch", "array-before-member",
                absl::StrCat(what, " signalled at ", array.signaled_unix_nanos,
                             " but member ", id, " ",
                             m->signaled() ? "at " : "is pending",
                             m->signaled() ? m->signaled_unix_nanos : 0));
    }
    if (m->error.ok()) continue;
    any_failed = true;
    if (SameError(m->error, array.error)) {
      carried = true;
      carried_at = std::min(carried_at, m->signaled_unix_nanos);
    } else {
      first_other_at = std::min(first_other_at, m->signaled_unix_nanos);
    }
  }
  if (any_failed == array.error.ok() || !carried) {
    Violation("batch", "array-error",
              absl::StrCat(
                  what, ": error ", array.error.ToString(),
                  any_failed ? " is no member's" : " but every member is OK"));
  } else if (any_failed && carried_at != INT64_MAX &&
             first_other_at != INT64_MAX &&
             first_other_at < carried_at - 1000000) {
    // Another member failed over 1 ms before the one whose error the array
    // carries (a margin for members signalled on different threads).
    Violation(
        "batch", "array-not-first-error",
        absl::StrCat(what, ": carries an error first seen at ", carried_at,
                     ", another member failed at ", first_other_at));
  }
  return true;
}

void BatchClient::CheckContent(const char* after) {
  for (Obj& o : objects_) {
    if (o.uncertain) continue;
    absl::StatusOr<std::vector<uint8_t>> got =
        cl_->Read(o.handle, 0, 0, Call());
    Note("Read", got.status());
    if (absl::IsDataLoss(got.status())) {
      ++stats_.unknown_objects["BATCH"];
      o.uncertain = true;
      continue;
    }
    if (!got.ok()) continue;  // ABORTED (engine read): try again later.
    stats_.bytes_read += got->size();
    std::optional<Mismatch> bad = FindMismatch(*got, o.shadow);
    if (!bad.has_value()) {
      stats_.bytes_verified += got->size();
      continue;
    }
    const size_t unit = bad->first / kUnitBytes * kUnitBytes;
    Violation("content", "stale-or-foreign-bytes",
              absl::StrCat(
                  o.handle, " after ", after, ": ", bad->count,
                  " bytes differ from the shadow, first at ", bad->first, ": ",
                  DescribeUnit(c_.options().seed, static_cast<uint32_t>(index_),
                               o.serial, got->data() + unit)));
    o.uncertain = true;
  }
  // Uncertain objects are destroyed with the next DestroyBatch.
  auto it = std::stable_partition(objects_.begin(), objects_.end(),
                                  [](const Obj& o) { return !o.uncertain; });
  for (auto u = it; u != objects_.end(); ++u) doomed_.push_back(u->handle);
  objects_.erase(it, objects_.end());
}

}  // namespace gpumig::torture
