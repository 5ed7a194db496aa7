#include "tests/torture/campaign.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <limits>
#include <optional>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/json.h"
#include "common/region_counters.h"
#include "core/base/mutex.h"
#include "tests/torture/campaign_batch.h"
#include "tests/torture/campaign_shm.h"
#include "tests/torture/pattern.h"
#include "tests/torture/rng.h"
#include "tests/torture/schedule.h"

namespace gpumig::torture {

using client::FenceKind;
using client::FenceOutcome;
using client::FenceState;
using client::FenceStatus;
using client::ObjectInfo;
using client::ObjectState;

namespace {

constexpr size_t kMaxViolationsKept = 100;
constexpr uint64_t kExamplesPerKey = 3;
constexpr size_t kHistoryPerObject = 12;

std::string CodeName(const absl::Status& s) {
  return absl::StatusCodeToString(s.code());
}

std::string Short(const absl::Status& s) {
  std::string m(s.message());
  if (m.size() > 160) m = m.substr(0, 160) + "...";
  return absl::StrCat(CodeName(s), m.empty() ? "" : ": ", m);
}

std::string Mib(uint64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

std::string Secs(absl::Duration d) {
  return absl::StrFormat("%.3fs", absl::ToDoubleSeconds(d));
}

void Stderr(const std::string& line) {
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

// The outcomes after which the operation took effect exactly: BLIT_OK and
// every fallback (CPU, or the device's independent path).
bool OkOutcome(FenceOutcome o) {
  return o != FenceOutcome::kUnspecified && o != FenceOutcome::kUnknownState &&
         o != FenceOutcome::kFailed;
}

}  // namespace

void CampaignStats::Merge(const CampaignStats& o) {
  ops += o.ops;
  for (const auto& [k, v] : o.ops_by_kind) ops_by_kind[k] += v;
  for (const auto& [k, v] : o.rpcs) {
    rpcs[k].calls += v.calls;
    for (const auto& [code, n] : v.errors) rpcs[k].errors[code] += n;
  }
  for (const auto& [k, v] : o.outcomes) outcomes[k] += v;
  bytes_written += o.bytes_written;
  bytes_read += o.bytes_read;
  bytes_verified += o.bytes_verified;
  bytes_checksummed += o.bytes_checksummed;
  objects_created += o.objects_created;
  objects_destroyed += o.objects_destroyed;
  for (const auto& [k, v] : o.unknown_objects) unknown_objects[k] += v;
  abandoned_objects += o.abandoned_objects;
  fences_aged_out += o.fences_aged_out;
  exec_failed += o.exec_failed;
  for (const auto& [k, v] : o.faults_injected) faults_injected[k] += v;
  for (const auto& [k, v] : o.faults_fired) faults_fired[k] += v;
  fault_inject_refused += o.fault_inject_refused;
  evict_calls += o.evict_calls;
  evict_objects += o.evict_objects;
  selftests += o.selftests;
  selftests_passed += o.selftests_passed;
  for (const auto& [k, v] : o.events) events[k] += v;
}

// ---------------------------------------------------------------------------
// Worker: one client thread and the objects it owns.

class Campaign::Worker {
 public:
  Worker(Campaign* campaign, int index, std::unique_ptr<client::Client> cl)
      : c_(*campaign),
        index_(index),
        rng_(DeriveSeed(campaign->options().seed, index + 1)),
        cl_(std::move(cl)) {
    const Layout& layout = c_.layout();
    budget_ = static_cast<uint64_t>(c_.options().oversubscribe *
                                    static_cast<double>(layout.lmem_size) /
                                    c_.options().clients);
    budget_ = std::max<uint64_t>(budget_ / 4096 * 4096, 4096);
    max_object_ = std::min<uint64_t>(c_.options().max_object_bytes,
                                     std::max<uint64_t>(budget_ / 3, 4096));
    max_object_ = std::max<uint64_t>(max_object_ / 4096 * 4096, 4096);
    shm_io_ = std::make_unique<ShmIo>(c_.options(), index_, max_object_);
  }

  void Run() {
    while (c_.TakeOp()) {
      OneOp();
      ++stats_.ops;
      c_.live_ops().fetch_add(1, std::memory_order_relaxed);
    }
    Finish();
  }

  CampaignStats& stats() { return stats_; }

 private:
  struct Obj {
    std::string handle;
    uint32_t serial = 0;
    uint64_t size = 0;
    std::vector<std::string> placements;
    bool cpu = false;
    uint32_t version = 0;
    std::vector<uint8_t> shadow;
    uint32_t pins = 0;
    std::string pinned_region;
    std::deque<uint64_t> ok_fences;  // signalled without error (recent)
    std::deque<std::string> history;
  };
  enum class Verdict { kOk, kUnknown, kFailed, kInconsistent };

  // --- plumbing

  client::CallOptions Call() const {
    client::CallOptions call;
    call.timeout = c_.options().rpc_timeout;
    return call;
  }

  // Counts the call; UNAVAILABLE stops the campaign. True if OK.
  bool Note(const char* method, const absl::Status& s) {
    MethodStats& m = stats_.rpcs[method];
    ++m.calls;
    if (!s.ok()) {
      ++m.errors[CodeName(s)];
      c_.NoteStatus(s);
    }
    return s.ok();
  }
  template <typename T>
  bool Note(const char* method, const absl::StatusOr<T>& r) {
    return Note(method, r.status());
  }

  bool Stopped() const { return c_.unavailable(); }

  void Log(Obj* obj, std::string what) {
    obj->history.push_back(absl::StrCat(Secs(c_.Elapsed()), " ", what));
    if (obj->history.size() > kHistoryPerObject) obj->history.pop_front();
  }

  std::string Describe(const Obj* obj) const {
    return absl::StrFormat(
        "client %d object %s (serial %u, %u bytes, placements %s%s, version "
        "%u, pins %u)",
        index_, obj->handle, obj->serial, obj->size,
        absl::StrJoin(obj->placements, ","), obj->cpu ? ", cpu" : "",
        obj->version, obj->pins);
  }

  void Flag(const std::string& check, const std::string& key, const Obj* obj,
            const std::string& what) {
    std::string text = what;
    if (obj != nullptr) {
      absl::StrAppend(&text, "\n    ", Describe(obj), "\n    recent ops:");
      for (const std::string& h : obj->history) {
        absl::StrAppend(&text, "\n      ", h);
      }
    }
    c_.AddViolation(check, key, text);
  }

  // Codes every call may see without it being a finding.
  static bool AlwaysAllowed(const absl::Status& s) {
    return s.code() == absl::StatusCode::kUnavailable ||
           s.code() == absl::StatusCode::kDeadlineExceeded;
  }

  // Records a contract violation unless `s` has an allowed code.
  void ExpectCodes(const char* what, const Obj* obj, const absl::Status& s,
                   std::initializer_list<absl::StatusCode> allowed) {
    if (s.ok() || AlwaysAllowed(s)) return;
    for (absl::StatusCode code : allowed) {
      if (s.code() == code) return;
    }
    Flag("contract",
         absl::StrCat("undocumented-status ", what, " ", CodeName(s)), obj,
         absl::StrCat(what, ": undocumented status ", Short(s)));
  }

  size_t IndexOf(const Obj* obj) const {
    for (size_t i = 0; i < objects_.size(); ++i) {
      if (objects_[i].get() == obj) return i;
    }
    return objects_.size();
  }

  void Forget(Obj* obj) {
    if (pinned_ == obj) pinned_ = nullptr;
    bytes_ -= obj->size;
    const size_t i = IndexOf(obj);
    if (i < objects_.size()) {
      objects_[i] = std::move(objects_.back());
      objects_.pop_back();
    }
  }

  Obj* PickObject() {
    if (objects_.empty()) return nullptr;
    return objects_[rng_.Below(objects_.size())].get();
  }

  // A 16-aligned range [offset, offset + length) of `obj`, length <= max.
  std::pair<uint64_t, uint64_t> RandomRange(const Obj* obj, uint64_t max,
                                            double whole_probability) {
    const uint64_t units = obj->size / kUnitBytes;
    if (rng_.Chance(whole_probability) && obj->size <= 4 * max) {
      return {0, obj->size};
    }
    const uint64_t first = rng_.Below(units);
    const uint64_t max_units = std::min(units - first, max / kUnitBytes);
    const uint64_t n = rng_.Between(1, std::max<uint64_t>(max_units, 1));
    return {first * kUnitBytes, n * kUnitBytes};
  }

  void RememberOkFence(Obj* obj, uint64_t fence_id) {
    obj->ok_fences.push_back(fence_id);
    if (obj->ok_fences.size() > 64) obj->ok_fences.pop_front();
  }

  // --- checks

  // Compares bytes read at `offset` with the shadow. On a mismatch records a
  // content violation describing the first bad unit, and abandons the object
  // (its shadow can no longer be trusted). True if equal.
  bool CheckBytes(Obj* obj, uint64_t offset, absl::Span<const uint8_t> got,
                  const std::string& what, const std::string& check) {
    absl::Span<const uint8_t> want(
        obj->shadow.data() + offset,
        std::min<uint64_t>(got.size(), obj->size - offset));
    std::optional<Mismatch> m = FindMismatch(got, want);
    stats_.bytes_verified += got.size();
    if (!m.has_value()) return true;
    const uint64_t bad = offset + m->first;
    const uint64_t unit = bad / kUnitBytes * kUnitBytes;
    std::string detail =
        absl::StrFormat("%s: %u of %u bytes differ, first at object offset %u",
                        what, m->count, got.size(), bad);
    if (unit >= offset && unit + kUnitBytes <= offset + got.size()) {
      absl::StrAppend(&detail, "; that unit holds ",
                      DescribeUnit(c_.options().seed, index_, obj->serial,
                                   got.data() + (unit - offset)),
                      ", expected ",
                      DescribeUnit(c_.options().seed, index_, obj->serial,
                                   obj->shadow.data() + unit));
    }
    if (got.size() != want.size()) {
      absl::StrAppend(&detail, "; got ", got.size(), " bytes, expected ",
                      want.size());
    }
    Flag(check,
         check == "content" ? "stale-or-foreign-bytes"
                            : "migration-changed-content",
         obj, detail);
    Log(obj, "CONTENT VIOLATION");
    Abandon(obj, "content violation");
    return false;
  }

  // Reads [offset, offset + length) and checks it. Handles DATA_LOSS.
  // Returns false if the object is gone from the model.
  bool ReadAndCheck(Obj* obj, uint64_t offset, uint64_t length,
                    const std::string& what,
                    const std::string& check = "content") {
    const char* method = "Read";
    absl::StatusOr<std::vector<uint8_t>> r = shm_io_->Read(
        *cl_, obj->handle, offset, length, Call(), &stats_, &method);
    Note(method, r);
    if (!r.ok()) {
      Log(obj,
          absl::StrCat("read ", offset, "+", length, " ", Short(r.status())));
      if (r.status().code() == absl::StatusCode::kDataLoss) {
        HandleDataLoss(obj, what);
        return false;
      }
      ExpectCodes(what.c_str(), obj, r.status(), {absl::StatusCode::kAborted});
      return true;
    }
    stats_.bytes_read += r->size();
    if (r->size() != length) {
      Flag("contract", "read-length", obj,
           absl::StrFormat("%s: Read of %u bytes returned %u", what, length,
                           r->size()));
    }
    Log(obj, absl::StrCat("read ", offset, "+", length, " ok"));
    return CheckBytes(obj, offset, *r, what, check);
  }

  // Whole-object check by Read or by engine checksum (then Read if the
  // checksum failed). False if the object left the model.
  bool VerifyWhole(Obj* obj, const std::string& what, bool allow_checksum,
                   const std::string& check = "content") {
    if (allow_checksum && rng_.Chance(0.4)) {
      std::optional<bool> ok = Checksum(obj, 0, obj->size, what, check);
      if (ok.has_value()) return *ok;
    }
    return ReadAndCheck(obj, 0, obj->size, what, check);
  }

  // Engine checksum of a range vs the shadow. nullopt: no checksum came back
  // (engine failure, deadline), object still in the model. false: the
  // object left the model.
  std::optional<bool> Checksum(Obj* obj, uint64_t offset, uint64_t length,
                               const std::string& what,
                               const std::string& check = "content") {
    client::ChecksumOptions o;
    o.handle = obj->handle;
    o.offset = offset;
    o.length = length;
    absl::StatusOr<client::ChecksumResult> r = cl_->ExecChecksum(o, Call());
    Note("ExecChecksum", r);
    if (!r.ok()) {
      Log(obj, absl::StrCat("checksum ", offset, "+", length, " ",
                            Short(r.status())));
      if (r.status().code() == absl::StatusCode::kDataLoss) {
        HandleDataLoss(obj, what);
        return false;
      }
      ExpectCodes(what.c_str(), obj, r.status(), {});
      return std::nullopt;
    }
    CountOutcome(r->fence, "checksum");
    Log(obj,
        absl::StrCat("checksum ", offset, "+", length, " fence ", r->fence_id,
                     " ", client::FenceOutcomeName(r->fence.outcome)));
    const FenceStatus& f = r->fence;
    if (f.state != FenceState::kSignaled) {
      Flag("contract", "checksum-fence", obj,
           absl::StrCat(what, ": checksum fence ", f.fence_id,
                        " returned unsignalled"));
      return std::nullopt;
    }
    if (f.outcome == FenceOutcome::kBlitOk) {
      if (!f.error.ok() || !r->checksum.has_value()) {
        Flag(
            "contract", "checksum-fence", obj,
            absl::StrCat(what, ": BLIT_OK checksum fence ", f.fence_id,
                         " without a checksum or with error ", Short(f.error)));
        return std::nullopt;
      }
      stats_.bytes_checksummed += length;
      const uint64_t want =
          Fnv1a64(absl::MakeConstSpan(obj->shadow.data() + offset, length));
      if (*r->checksum == want) {
        stats_.bytes_verified += length;
        return true;
      }
      // Diagnose by reading the same range.
      std::string detail = absl::StrFormat(
          "%s: engine checksum of [%u, +%u) is 0x%016x, expected 0x%016x "
          "(fence %u)",
          what, offset, length, *r->checksum, want, f.fence_id);
      absl::StatusOr<std::vector<uint8_t>> back =
          cl_->Read(obj->handle, offset, length, Call());
      Note("Read", back);
      if (back.ok()) {
        std::optional<Mismatch> m = FindMismatch(
            *back, absl::MakeConstSpan(obj->shadow.data() + offset, length));
        if (m.has_value()) {
          const uint64_t unit = (offset + m->first) / kUnitBytes * kUnitBytes;
          absl::StrAppend(
              &detail, "; a Read after it differs too at offset ",
              offset + m->first, ": ",
              unit + kUnitBytes <= offset + back->size()
                  ? DescribeUnit(c_.options().seed, index_, obj->serial,
                                 back->data() + (unit - offset))
                  : std::string("?"));
        } else {
          absl::StrAppend(&detail, "; a Read after it matches the shadow");
        }
      } else {
        absl::StrAppend(&detail, "; Read after it: ", Short(back.status()));
      }
      Flag(check, "checksum-mismatch", obj, detail);
      Abandon(obj, "checksum violation");
      return false;
    }
    if (f.outcome == FenceOutcome::kFailed) {
      if (f.error.ok()) {
        Flag("contract", "checksum-fence", obj,
             absl::StrCat(what, ": FAILED checksum fence ", f.fence_id,
                          " without an error"));
      }
      return std::nullopt;
    }
    if (f.outcome == FenceOutcome::kUnknownState) {
      Flag("unknown-state", "checksum-unknown", obj,
           absl::StrCat(what, ": checksum fence ", f.fence_id,
                        " ended UNKNOWN_STATE (a checksum touches "
                        "nothing)"));
      ExpectUnknown(obj, f.fence_id, "EXEC", what);
      return false;
    }
    Flag("contract", "checksum-fence", obj,
         absl::StrCat(what, ": checksum fence ", f.fence_id, " outcome ",
                      client::FenceOutcomeName(f.outcome),
                      " (a checksum has no fallback)"));
    return std::nullopt;
  }

  // Counts a fence outcome as "KIND/OUTCOME", with the Exec op named:
  // "EXEC(fill)/BLIT_OK".
  void CountOutcome(const FenceStatus& f, const char* op) {
    std::string kind = client::FenceKindName(f.kind);
    if (f.kind == FenceKind::kExec) absl::StrAppend(&kind, "(", op, ")");
    ++stats_.outcomes[absl::StrCat(kind, "/",
                                   client::FenceOutcomeName(f.outcome))];
  }

  // A fence of `obj` was NOT_FOUND. Fine if it aged out of the history;
  // a contract violation if it is still the object's move or last fence
  // (docs/api.md: such fences stay queryable).
  void FenceNotFound(Obj* obj, uint64_t fence_id, const std::string& what) {
    ++stats_.fences_aged_out;
    absl::StatusOr<ObjectInfo> info = cl_->GetObject(obj->handle, Call());
    Note("GetObject", info);
    if (!info.ok()) return;
    if (info->move_fence_id == fence_id || info->last_fence_id == fence_id) {
      Flag("contract", "fence-forgotten", obj,
           absl::StrFormat("%s: fence %u is NOT_FOUND although it is the "
                           "object's %s fence (docs/api.md: it stays "
                           "queryable while it is)",
                           what, fence_id,
                           info->move_fence_id == fence_id ? "move" : "last"));
    }
  }

  // Waits for a fence. nullopt if it aged out (counted), the wait timed out
  // twice, or the daemon went away.
  std::optional<FenceStatus> Wait(Obj* obj, uint64_t fence_id) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      client::CallOptions call = Call();
      absl::StatusOr<FenceStatus> f =
          cl_->WaitFence(fence_id, c_.options().rpc_timeout, call);
      Note("WaitFence", f);
      if (f.ok()) return *f;
      if (f.status().code() == absl::StatusCode::kNotFound) {
        FenceNotFound(obj, fence_id, "WaitFence");
        return std::nullopt;
      }
      ExpectCodes("WaitFence", obj, f.status(), {});
      if (f.status().code() != absl::StatusCode::kDeadlineExceeded) break;
    }
    return std::nullopt;
  }

  // Checks a signalled fence's fields against each other and classifies it.
  Verdict Classify(Obj* obj, const FenceStatus& f, const std::string& what,
                   const char* op) {
    CountOutcome(f, op);
    Log(obj, absl::StrCat(what, " fence ", f.fence_id, " ",
                          client::FenceKindName(f.kind), " ",
                          client::FenceOutcomeName(f.outcome),
                          f.error.ok() ? "" : " ",
                          f.error.ok() ? "" : Short(f.error)));
    if (f.state != FenceState::kSignaled) {
      Flag("contract", "fence-fields", obj,
           absl::StrCat(what, ": fence ", f.fence_id,
                        " reported unsignalled after a wait"));
      return Verdict::kInconsistent;
    }
    if (OkOutcome(f.outcome)) {
      if (!f.error.ok()) {
        Flag("contract", "fence-fields", obj,
             absl::StrCat(what, ": fence ", f.fence_id, " outcome ",
                          client::FenceOutcomeName(f.outcome), " with error ",
                          Short(f.error)));
        return Verdict::kInconsistent;
      }
      RememberOkFence(obj, f.fence_id);
      return Verdict::kOk;
    }
    if (f.outcome == FenceOutcome::kUnknownState) {
      if (f.error.ok()) {
        Flag("unknown-state", "unknown-without-error", obj,
             absl::StrCat(what, ": fence ", f.fence_id,
                          " outcome UNKNOWN_STATE without an error"));
      }
      return Verdict::kUnknown;
    }
    if (f.outcome == FenceOutcome::kFailed) {
      if (f.error.ok()) {
        Flag("contract", "fence-fields", obj,
             absl::StrCat(what, ": fence ", f.fence_id,
                          " outcome FAILED without an error"));
      }
      return Verdict::kFailed;
    }
    Flag("contract", "fence-fields", obj,
         absl::StrCat(what, ": signalled fence ", f.fence_id,
                      " without an outcome"));
    return Verdict::kInconsistent;
  }

  // An access was refused with DATA_LOSS: the object must be UNKNOWN.
  void HandleDataLoss(Obj* obj, const std::string& what) {
    Log(obj, absl::StrCat(what, ": DATA_LOSS"));
    ExpectUnknown(obj, 0, "", what);
  }

  // Check (3): the object must be UNKNOWN (made so by a fence with an
  // error) and refuse every access; then it is destroyed. `fence_id`/`cause`:
  // the fence the client saw end UNKNOWN_STATE, if any.
  void ExpectUnknown(Obj* obj, uint64_t fence_id, std::string cause,
                     const std::string& what) {
    if (Stopped()) return;
    absl::StatusOr<ObjectInfo> info = cl_->GetObject(obj->handle, Call());
    Note("GetObject", info);
    if (!info.ok()) {
      ExpectCodes("GetObject", obj, info.status(), {});
      if (info.status().code() == absl::StatusCode::kNotFound) {
        Flag("unknown-state", "object-vanished", obj,
             absl::StrCat(what, ": object vanished (NOT_FOUND)"));
        Forget(obj);
      }
      return;
    }
    if (info->state != ObjectState::kUnknown) {
      Flag("unknown-state", "unknown-state-mismatch", obj,
           absl::StrCat(
               what, ": ",
               fence_id != 0
                   ? absl::StrCat("fence ", fence_id, " ended UNKNOWN_STATE")
                   : std::string("an access was refused with "
                                 "DATA_LOSS"),
               " but the object's state is ",
               client::ObjectStateName(info->state)));
      // Keep the object only if it still looks usable.
      if (fence_id != 0) Abandon(obj, "state mismatch");
      return;
    }
    const uint64_t culprit = info->unknown_fence_id;
    for (uint64_t ok : obj->ok_fences) {
      if (ok == culprit) {
        Flag("unknown-state", "unknown-by-ok-fence", obj,
             absl::StrCat(what, ": the object is UNKNOWN by fence ", culprit,
                          " (", info->unknown_reason,
                          "), which this client saw signal without error"));
      }
    }
    if (cause.empty() || (fence_id != 0 && culprit != fence_id)) {
      cause = "?";
      if (culprit != 0) {
        // The object is marked just before its culprit signals: wait.
        absl::StatusOr<FenceStatus> f =
            cl_->WaitFence(culprit, c_.options().rpc_timeout, Call());
        Note("WaitFence", f);
        if (f.ok()) {
          cause = client::FenceKindName(f->kind);
          if (f->outcome != FenceOutcome::kUnknownState || f->error.ok()) {
            Flag("unknown-state", "unknown-fence-inconsistent", obj,
                 absl::StrCat(what, ": object UNKNOWN (", info->unknown_reason,
                              ") but its "
                              "unknown_fence_id ",
                              culprit, " is ", client::FenceKindName(f->kind),
                              " ", client::FenceOutcomeName(f->outcome),
                              " error ", Short(f->error)));
          }
        } else if (f.status().code() == absl::StatusCode::kNotFound) {
          FenceNotFound(obj, culprit, "WaitFence of unknown_fence_id");
        } else {
          ExpectCodes("WaitFence", obj, f.status(), {});
        }
      }
    }
    Log(obj, absl::StrCat("UNKNOWN by fence ", culprit, " (", cause,
                          "): ", info->unknown_reason));
    CheckRefusals(obj, what);
    if (Stopped()) return;
    if (obj->pins > 0) {
      absl::StatusOr<uint32_t> u = cl_->Unpin(obj->handle, Call());
      Note("Unpin", u);
      if (!u.ok()) {
        ExpectCodes("Unpin of an UNKNOWN object", obj, u.status(), {});
      }
    }
    ++stats_.unknown_objects[cause];
    c_.live_unknown().fetch_add(1, std::memory_order_relaxed);
    Destroy(obj, "destroy UNKNOWN object");
  }

  // Every content call on an UNKNOWN object must be DATA_LOSS.
  void CheckRefusals(Obj* obj, const std::string& what) {
    auto refused = [&](const char* call, const absl::Status& s) {
      if (s.code() == absl::StatusCode::kDataLoss || AlwaysAllowed(s)) return;
      Flag("unknown-state", "unknown-access-allowed", obj,
           absl::StrCat(what, ": ", call, " on an UNKNOWN object: ",
                        s.ok() ? std::string("OK (allowed!)") : Short(s),
                        ", expected DATA_LOSS"));
    };
    {
      absl::StatusOr<std::vector<uint8_t>> r = cl_->Read(
          obj->handle, 0, std::min<uint64_t>(obj->size, 4096), Call());
      Note("Read", r);
      refused("Read", r.status());
    }
    if (Stopped()) return;
    {
      std::vector<uint8_t> data(kUnitBytes);
      FillPattern(c_.options().seed, index_, obj->serial, ++obj->version, 0,
                  absl::MakeSpan(data));
      absl::StatusOr<uint64_t> w = cl_->Write(obj->handle, data, 0, Call());
      Note("Write", w);
      refused("Write", w.status());
    }
    {
      client::FillOptions f;
      f.handle = obj->handle;
      f.value = 0x5a;
      f.length = kUnitBytes;
      f.wait = true;
      absl::StatusOr<client::SubmitResult> r = cl_->ExecFill(f, Call());
      Note("ExecFill", r);
      refused("ExecFill", r.status());
    }
    {
      client::ChecksumOptions o;
      o.handle = obj->handle;
      absl::StatusOr<client::ChecksumResult> r = cl_->ExecChecksum(o, Call());
      Note("ExecChecksum", r);
      refused("ExecChecksum", r.status());
    }
    {
      // Copy into it from one of our other objects (or itself).
      Obj* src = PickObject();
      if (src == nullptr) src = obj;
      client::CopyOptions o;
      o.src_handle = src->handle;
      o.dst_handle = obj->handle;
      o.src_offset = 0;
      o.dst_offset = src == obj ? kUnitBytes : 0;
      o.length = kUnitBytes;
      o.wait = true;
      absl::StatusOr<client::SubmitResult> r = cl_->ExecCopy(o, Call());
      Note("ExecCopy", r);
      refused("ExecCopy", r.status());
    }
    {
      const std::string& target =
          obj->placements[rng_.Below(obj->placements.size())];
      absl::StatusOr<client::SubmitResult> r =
          cl_->Migrate(obj->handle, target, false, Call());
      Note("Migrate", r);
      refused("Migrate", r.status());
    }
    {
      absl::StatusOr<uint32_t> r = cl_->Pin(obj->handle, Call());
      Note("Pin", r);
      refused("Pin", r.status());
      if (r.ok()) ++obj->pins;
    }
  }

  // Destroys the object (it must exist) and checks it is gone.
  void Destroy(Obj* obj, const std::string& what) {
    absl::Status s = cl_->DestroyObject(obj->handle, Call());
    Note("DestroyObject", s);
    if (!s.ok()) {
      if (Stopped()) return;
      ExpectCodes(what.c_str(), obj, s, {});
      if (s.code() == absl::StatusCode::kNotFound) {
        Flag("contract", "object-vanished", obj,
             absl::StrCat(what, ": object vanished"));
      } else {
        return;  // keep it; the final pass retries
      }
      Forget(obj);
      return;
    }
    ++stats_.objects_destroyed;
    absl::StatusOr<ObjectInfo> after = cl_->GetObject(obj->handle, Call());
    Note("GetObject", after);
    if (after.ok()) {
      Flag("contract", "destroy-still-visible", obj,
           absl::StrCat(what, ": Get after Destroy still finds it"));
    } else if (after.status().code() != absl::StatusCode::kNotFound) {
      ExpectCodes("GetObject after Destroy", obj, after.status(), {});
    }
    Forget(obj);
  }

  void Abandon(Obj* obj, const std::string& why) {
    ++stats_.abandoned_objects;
    Log(obj, absl::StrCat("abandoned: ", why));
    Destroy(obj, absl::StrCat("destroy abandoned object (", why, ")"));
  }

  // --- operations

  void OneOp() {
    if (objects_.empty()) {
      ++stats_.ops_by_kind["create"];
      OpCreate();
      return;
    }
    const uint64_t pick = rng_.Below(100);
    if (pick < 14) {
      ++stats_.ops_by_kind["create"];
      OpCreate();
    } else if (pick < 32) {
      ++stats_.ops_by_kind["write"];
      OpWrite(PickObject());
    } else if (pick < 46) {
      ++stats_.ops_by_kind["read"];
      OpRead(PickObject());
    } else if (pick < 54) {
      ++stats_.ops_by_kind["checksum"];
      OpChecksum(PickObject());
    } else if (pick < 72) {
      ++stats_.ops_by_kind["migrate"];
      OpMigrate(PickObject());
    } else if (pick < 78) {
      ++stats_.ops_by_kind["fill"];
      OpFill(PickObject());
    } else if (pick < 83) {
      ++stats_.ops_by_kind["copy"];
      OpCopy(PickObject(), PickObject());
    } else if (pick < 87) {
      ++stats_.ops_by_kind["pin"];
      OpPin();
    } else if (pick < 91) {
      ++stats_.ops_by_kind["get"];
      OpGet(PickObject());
    } else if (pick < 92) {
      ++stats_.ops_by_kind["list"];
      OpList();
    } else {
      ++stats_.ops_by_kind["destroy"];
      OpDestroy(PickObject());
    }
  }

  void OpCreate() {
    const Layout& layout = c_.layout();
    const uint64_t max_pages = max_object_ / 4096;
    int bits = 0;
    while ((uint64_t{1} << bits) <= max_pages) ++bits;
    const uint64_t hi =
        std::min<uint64_t>(max_pages, uint64_t{1} << rng_.Below(bits));
    const uint64_t pages = rng_.Between((hi + 1) / 2, hi);
    const uint64_t size = std::max<uint64_t>(pages, 1) * 4096;
    if (bytes_ + size > budget_) {
      if (!objects_.empty()) OpDestroy(PickObject());
      return;
    }
    client::CreateObjectOptions o;
    o.size_bytes = size;
    const double t = rng_.Unit();
    if (t < 0.60) {
      o.placements = {layout.lmem, layout.smem};
    } else if (t < 0.78) {
      o.placements = {layout.smem, layout.lmem};
    } else if (t < 0.95) {
      o.placements = {layout.lmem, layout.smem};
      o.require_cpu_access = size <= layout.lmem_aperture / 8;
    } else if (size <= (64 << 10)) {
      o.placements = {layout.lmem};
    } else {
      o.placements = {layout.lmem, layout.smem};
    }
    o.pin = pinned_ == nullptr && size <= (256 << 10) && rng_.Chance(0.03);
    const uint32_t serial = next_serial_++;
    o.label = absl::StrFormat("torture-%u-c%d-o%u", c_.options().seed, index_,
                              serial);
    absl::StatusOr<client::CreateObjectResult> r = cl_->CreateObject(o, Call());
    Note("CreateObject", r);
    if (!r.ok()) {
      ExpectCodes(
          "CreateObject", nullptr, r.status(),
          {absl::StatusCode::kResourceExhausted, absl::StatusCode::kAborted});
      return;
    }
    ++stats_.objects_created;
    auto owned = std::make_unique<Obj>();
    Obj* obj = owned.get();
    obj->handle = r->object.handle;
    obj->serial = serial;
    obj->size = size;
    obj->placements = o.placements;
    obj->cpu = o.require_cpu_access;
    obj->shadow.assign(size, 0);
    obj->pins = o.pin ? 1 : 0;
    objects_.push_back(std::move(owned));
    bytes_ += size;
    const ObjectInfo& info = r->object;
    if (o.pin) {
      pinned_ = obj;
      obj->pinned_region = info.region;
    }
    Log(obj,
        absl::StrCat("create in ", info.region, " clear fence ", r->fence_id));
    std::string bad;
    if (info.handle.empty() || r->fence_id == 0) bad = "no handle or fence";
    if (info.size_bytes != size) bad = "wrong size";
    if (std::find(o.placements.begin(), o.placements.end(), info.region) ==
        o.placements.end()) {
      bad = "region not among placements";
    }
    if (info.pin_count != obj->pins) bad = "wrong pin count";
    if (obj->cpu && info.region == layout.lmem && !info.cpu_accessible) {
      bad = "require_cpu_access object in LMEM not cpu_accessible";
    }
    if (!bad.empty()) {
      Flag("contract", "create-fields", obj,
           absl::StrCat("CreateObject: ", bad));
    }
    if (info.state == ObjectState::kUnknown) {
      // The clear already failed with no fallback (e.g. a wedged engine
      // outside the aperture): legitimate, and it must be UNKNOWN for good.
      ExpectUnknown(obj, r->fence_id, "CLEAR", "create (UNKNOWN at once)");
      return;
    }
    if (rng_.Chance(0.25)) {
      std::optional<FenceStatus> f = Wait(obj, r->fence_id);
      if (!f.has_value()) return;
      switch (Classify(obj, *f, "create clear", "")) {
        case Verdict::kOk:
          break;
        case Verdict::kUnknown:
          ExpectUnknown(obj, f->fence_id, "CLEAR", "create clear");
          return;
        case Verdict::kFailed:
          // A FAILED clear must never let the object be read with someone
          // else's bytes: the check below (zeros, or DATA_LOSS) covers it.
          break;
        case Verdict::kInconsistent:
          Abandon(obj, "inconsistent clear fence");
          return;
      }
    }
    // The new owner must read zeros: never a previous owner's bytes.
    if (rng_.Chance(0.6)) {
      if (size <= (256 << 10)) {
        ReadAndCheck(obj, 0, size, "fresh object reads zeros");
      } else if (ReadAndCheck(obj, 0, 64 << 10, "fresh object reads zeros")) {
        ReadAndCheck(obj, size - (64 << 10), 64 << 10,
                     "fresh object reads zeros (tail)");
      }
    }
  }

  void OpWrite(Obj* obj) {
    auto [offset, length] = RandomRange(obj, 256 << 10, 0.25);
    const uint32_t version = ++obj->version;
    std::vector<uint8_t> data(length);
    FillPattern(c_.options().seed, index_, obj->serial, version, offset,
                absl::MakeSpan(data));
    for (int attempt = 0; attempt < 6; ++attempt) {
      const char* method = "Write";
      absl::StatusOr<uint64_t> w = shm_io_->Write(
          *cl_, obj->handle, data, offset, Call(), &stats_, &method);
      Note(method, w);
      if (w.ok()) {
        if (*w != length) {
          Flag("contract", "write-length", obj,
               absl::StrFormat("Write of %u bytes reported %u", length, *w));
        }
        std::memcpy(obj->shadow.data() + offset, data.data(), length);
        stats_.bytes_written += length;
        Log(obj, absl::StrCat("write ", offset, "+", length, " v", version));
        return;
      }
      Log(obj, absl::StrCat("write ", offset, "+", length, " v", version, " ",
                            Short(w.status())));
      if (Stopped()) return;
      if (w.status().code() == absl::StatusCode::kDataLoss) {
        HandleDataLoss(obj, "write");
        return;
      }
      if (w.status().code() != absl::StatusCode::kAborted &&
          w.status().code() != absl::StatusCode::kDeadlineExceeded) {
        ExpectCodes("Write", obj, w.status(), {});
        break;
      }
      // A prefix may have been written: retry the same bytes.
      absl::SleepFor(absl::Milliseconds(5 * (attempt + 1)));
    }
    Abandon(obj, "write kept failing; content uncertain");
  }

  void OpRead(Obj* obj) {
    auto [offset, length] = RandomRange(obj, 512 << 10, 0.4);
    ReadAndCheck(obj, offset, length, "read");
  }

  void OpChecksum(Obj* obj) {
    auto [offset, length] = RandomRange(obj, 1 << 20, 0.5);
    Checksum(obj, offset, length, "checksum");
  }

  void OpMigrate(Obj* obj) {
    if (obj->pins > 0) {
      PinnedMigrate(obj);
      return;
    }
    const std::string target =
        obj->placements[rng_.Below(obj->placements.size())];
    const bool wait = rng_.Chance(0.5);
    absl::StatusOr<client::SubmitResult> r =
        cl_->Migrate(obj->handle, target, wait, Call());
    Note("Migrate", r);
    const std::string what = absl::StrCat("migrate to ", target);
    if (!r.ok()) {
      Log(obj,
          absl::StrCat(what, wait ? " (wait)" : "", ": ", Short(r.status())));
      if (Stopped()) return;
      switch (r.status().code()) {
        case absl::StatusCode::kDataLoss:
          HandleDataLoss(obj, what);
          return;
        case absl::StatusCode::kAborted:
          // Nothing changed: the content must be intact.
          if (rng_.Chance(0.5)) VerifyWhole(obj, what + " (ABORTED)", true);
          return;
        case absl::StatusCode::kResourceExhausted:
          return;
        case absl::StatusCode::kDeadlineExceeded:
          return;  // the migration goes on; later ops are ordered after it
        case absl::StatusCode::kNotFound:
          MigrateNotFound(obj, what, wait, r.status());
          return;
        default:
          ExpectCodes("Migrate", obj, r.status(), {});
          return;
      }
    }
    if (r->fence_id == 0) {
      Flag("contract", "fence-fields", obj, what + ": no fence id");
      return;
    }
    Log(obj, absl::StrCat(what, wait ? " (wait)" : "", " fence ", r->fence_id));
    std::optional<FenceStatus> f;
    if (wait) {
      if (!r->fence.has_value()) {
        Flag("contract", "fence-fields", obj,
             what + ": wait without a fence status");
        return;
      }
      f = r->fence;
    } else {
      // Content calls are ordered after the migration: read at once
      // sometimes, before looking at the fence.
      if (rng_.Chance(0.3) &&
          !ReadAndCheck(obj, 0, obj->size, what + " (read before wait)")) {
        return;
      }
      f = Wait(obj, r->fence_id);
    }
    if (!f.has_value()) {
      if (!Stopped()) VerifyWhole(obj, what + " (fence aged out)", false);
      return;
    }
    if (f->fence_id != r->fence_id ||
        (f->handle != obj->handle && !f->handle.empty())) {
      Flag("contract", "fence-fields", obj,
           absl::StrCat(what, ": fence ", f->fence_id, " of ", f->handle,
                        " returned for fence ", r->fence_id));
    }
    switch (Classify(obj, *f, what, "")) {
      case Verdict::kOk:
        // Check (2): the migration preserved content exactly.
        VerifyWhole(obj,
                    absl::StrCat(what, " (fence ", f->fence_id, " ",
                                 client::FenceOutcomeName(f->outcome),
                                 ") preserved content"),
                    true, "migration");
        return;
      case Verdict::kUnknown:
        ExpectUnknown(obj, f->fence_id, client::FenceKindName(f->kind), what);
        return;
      case Verdict::kFailed:
        VerifyWhole(obj, what + " (FAILED: nothing changed)", true);
        return;
      case Verdict::kInconsistent:
        Abandon(obj, "inconsistent migration fence");
        return;
    }
  }

  // Migrate answered NOT_FOUND: find out whether the object is gone or the
  // daemon could not find a fence it should have kept.
  void MigrateNotFound(Obj* obj, const std::string& what, bool wait,
                       const absl::Status& status) {
    absl::StatusOr<ObjectInfo> info = cl_->GetObject(obj->handle, Call());
    Note("GetObject", info);
    if (!info.ok()) {
      if (info.status().code() == absl::StatusCode::kNotFound) {
        Flag("contract", "object-vanished", obj,
             absl::StrCat(what, ": NOT_FOUND, and so is the object"));
        Forget(obj);
      }
      return;
    }
    const std::string detail = absl::StrFormat(
        "%s (wait=%d): %s although the object exists (in %s, move fence %u)",
        what, wait, Short(status), info->region, info->move_fence_id);
    absl::StatusOr<FenceStatus> mf = cl_->GetFence(info->move_fence_id, Call());
    Note("GetFence", mf);
    if (!mf.ok() && mf.status().code() == absl::StatusCode::kNotFound) {
      Flag("contract", "fence-forgotten", obj,
           absl::StrCat(detail,
                        "; FenceService.Get of that move fence is NOT_FOUND "
                        "too (docs/api.md: a fence stays queryable while it "
                        "is an object's move_fence_id)"));
    } else if (absl::StrContains(status.message(), "fence")) {
      // Migrate to the current region returns the current move fence; with
      // `wait` the daemon looks it up and it had aged out. (The object may
      // have moved since, with a new move fence.)
      Flag("contract", "fence-forgotten", obj,
           absl::StrCat(detail,
                        "; the fence Migrate answered with was forgotten "
                        "(docs/api.md: a fence stays queryable while it is "
                        "an object's move_fence_id)"));
    } else {
      Flag("contract", "undocumented-status Migrate NOT_FOUND", obj, detail);
    }
  }

  // A pinned object must refuse to move and stay where it is.
  void PinnedMigrate(Obj* obj) {
    absl::StatusOr<ObjectInfo> info = cl_->GetObject(obj->handle, Call());
    Note("GetObject", info);
    if (!info.ok()) {
      ExpectCodes("GetObject", obj, info.status(), {});
      return;
    }
    if (info->state == ObjectState::kUnknown) {
      ExpectUnknown(obj, 0, "", "get of pinned object");
      return;
    }
    std::string target;
    for (const std::string& p : obj->placements) {
      if (p != info->region) target = p;
    }
    if (target.empty()) return;
    absl::StatusOr<client::SubmitResult> r =
        cl_->Migrate(obj->handle, target, false, Call());
    Note("Migrate", r);
    Log(obj, absl::StrCat("migrate pinned to ", target, ": ",
                          r.ok() ? std::string("OK") : Short(r.status())));
    if (r.ok()) {
      Flag("contract", "pinned-moved", obj,
           absl::StrCat("a pinned object in ", info->region,
                        " accepted Migrate to ", target));
      return;
    }
    if (r.status().code() == absl::StatusCode::kDataLoss) {
      HandleDataLoss(obj, "migrate pinned");
      return;
    }
    if (r.status().code() != absl::StatusCode::kFailedPrecondition) {
      ExpectCodes("Migrate of a pinned object", obj, r.status(), {});
    }
  }

  void OpFill(Obj* obj) {
    auto [offset, length] = RandomRange(obj, 1 << 20, 0.3);
    client::FillOptions o;
    o.handle = obj->handle;
    o.value = static_cast<uint32_t>(rng_.Below(256));
    o.offset = offset;
    o.length = length;
    o.wait = rng_.Chance(0.5);
    absl::StatusOr<client::SubmitResult> r = cl_->ExecFill(o, Call());
    Note("ExecFill", r);
    const std::string what =
        absl::StrFormat("fill [%u, +%u) with 0x%02x", offset, length, o.value);
    if (!r.ok()) {
      Log(obj, absl::StrCat(what, ": ", Short(r.status())));
      if (Stopped()) return;
      if (r.status().code() == absl::StatusCode::kDataLoss) {
        HandleDataLoss(obj, what);
      } else if (r.status().code() == absl::StatusCode::kDeadlineExceeded) {
        if (o.wait) Abandon(obj, "fill outcome unknown (deadline)");
      } else {
        ExpectCodes("ExecFill", obj, r.status(), {});
      }
      return;
    }
    std::optional<FenceStatus> f = o.wait ? r->fence : Wait(obj, r->fence_id);
    if (!f.has_value()) {
      if (!Stopped()) Abandon(obj, "fill outcome unknown");
      return;
    }
    switch (Classify(obj, *f, what, "fill")) {
      case Verdict::kOk:
        std::memset(obj->shadow.data() + offset, static_cast<int>(o.value),
                    length);
        if (rng_.Chance(0.3)) ReadAndCheck(obj, offset, length, what);
        return;
      case Verdict::kUnknown:
        ExpectUnknown(obj, f->fence_id, "EXEC", what);
        return;
      case Verdict::kFailed:
        CheckFailedExec(
            obj, offset,
            std::vector<uint8_t>(length, static_cast<uint8_t>(o.value)), what);
        return;
      case Verdict::kInconsistent:
        Abandon(obj, "inconsistent fill fence");
        return;
    }
  }

  // docs/api.md and objects.proto: Exec has no failsafe. A Fill or Copy that
  // ends FAILED leaves in its range the owner's own bytes: per byte the old
  // content or the new (an engine that failed midway), never anything else.
  // Reads the range (sometimes; always when `must_check`), checks that, and
  // takes what it read into the shadow. `fresh` is what the command would
  // have written.
  void CheckFailedExec(Obj* obj, uint64_t offset,
                       const std::vector<uint8_t>& fresh,
                       const std::string& what) {
    ++stats_.exec_failed;
    absl::StatusOr<std::vector<uint8_t>> r =
        cl_->Read(obj->handle, offset, fresh.size(), Call());
    Note("Read", r);
    if (!r.ok()) {
      Log(obj, absl::StrCat(what, " (FAILED) read ", Short(r.status())));
      if (r.status().code() == absl::StatusCode::kDataLoss) {
        HandleDataLoss(obj, what);
      } else {
        ExpectCodes(what.c_str(), obj, r.status(),
                    {absl::StatusCode::kAborted});
        // The range's content is not known now: stop trusting the shadow.
        if (!Stopped()) Abandon(obj, "failed exec, range unread");
      }
      return;
    }
    stats_.bytes_read += r->size();
    if (r->size() != fresh.size()) {
      Flag("contract", "read-length", obj,
           absl::StrFormat("%s: Read of %u bytes returned %u", what,
                           fresh.size(), r->size()));
      Abandon(obj, "short read");
      return;
    }
    uint8_t* shadow = obj->shadow.data() + offset;
    uint64_t adopted = 0;
    for (size_t i = 0; i < r->size(); ++i) {
      if ((*r)[i] == shadow[i]) continue;
      if ((*r)[i] != fresh[i]) {
        // Neither old nor new: report it against the old content.
        CheckBytes(obj, offset, *r, what + " (FAILED: old or new bytes only)",
                   "content");
        return;
      }
      ++adopted;
    }
    std::memcpy(shadow, r->data(), r->size());
    stats_.bytes_verified += r->size();
    Log(obj, absl::StrCat(what, " FAILED; range holds old/new bytes (", adopted,
                          " new)"));
  }

  void OpCopy(Obj* src, Obj* dst) {
    const uint64_t max = std::min<uint64_t>({src->size, dst->size, 1 << 20});
    const uint64_t length = rng_.Between(1, max / kUnitBytes) * kUnitBytes;
    uint64_t src_offset = 0, dst_offset = 0;
    bool found = false;
    for (int attempt = 0; attempt < 8 && !found; ++attempt) {
      src_offset =
          rng_.Below((src->size - length) / kUnitBytes + 1) * kUnitBytes;
      dst_offset =
          rng_.Below((dst->size - length) / kUnitBytes + 1) * kUnitBytes;
      found = src != dst || src_offset + length <= dst_offset ||
              dst_offset + length <= src_offset;
    }
    if (!found) return;
    client::CopyOptions o;
    o.src_handle = src->handle;
    o.dst_handle = dst->handle;
    o.src_offset = src_offset;
    o.dst_offset = dst_offset;
    o.length = length;
    o.wait = rng_.Chance(0.5);
    absl::StatusOr<client::SubmitResult> r = cl_->ExecCopy(o, Call());
    Note("ExecCopy", r);
    const std::string what =
        absl::StrFormat("copy %s[%u, +%u) -> %s[%u]", src->handle, src_offset,
                        length, dst->handle, dst_offset);
    if (!r.ok()) {
      Log(dst, absl::StrCat(what, ": ", Short(r.status())));
      if (Stopped()) return;
      if (r.status().code() == absl::StatusCode::kDataLoss) {
        // Whichever of the two is UNKNOWN.
        absl::StatusOr<ObjectInfo> si = cl_->GetObject(src->handle, Call());
        Note("GetObject", si);
        const bool src_unknown = si.ok() && si->state == ObjectState::kUnknown;
        bool dst_unknown = false;
        if (src != dst) {
          absl::StatusOr<ObjectInfo> di = cl_->GetObject(dst->handle, Call());
          Note("GetObject", di);
          dst_unknown = di.ok() && di->state == ObjectState::kUnknown;
        }
        if (!src_unknown && !dst_unknown) {
          Flag("unknown-state", "data-loss-without-unknown", dst,
               absl::StrCat(what,
                            ": DATA_LOSS but neither object is "
                            "UNKNOWN"));
          return;
        }
        if (src_unknown) HandleDataLoss(src, what + " (source)");
        if (dst_unknown) HandleDataLoss(dst, what + " (destination)");
      } else if (r.status().code() == absl::StatusCode::kDeadlineExceeded) {
        if (o.wait) Abandon(dst, "copy outcome unknown (deadline)");
      } else {
        ExpectCodes("ExecCopy", dst, r.status(), {});
      }
      return;
    }
    std::optional<FenceStatus> f = o.wait ? r->fence : Wait(dst, r->fence_id);
    if (!f.has_value()) {
      if (!Stopped()) Abandon(dst, "copy outcome unknown");
      return;
    }
    switch (Classify(dst, *f, what, "copy")) {
      case Verdict::kOk: {
        std::vector<uint8_t> tmp(src->shadow.begin() + src_offset,
                                 src->shadow.begin() + src_offset + length);
        std::memcpy(dst->shadow.data() + dst_offset, tmp.data(), length);
        Log(src, what + " ok");
        if (rng_.Chance(0.3)) ReadAndCheck(dst, dst_offset, length, what);
        return;
      }
      case Verdict::kUnknown:
        ExpectUnknown(dst, f->fence_id, "EXEC", what);
        return;
      case Verdict::kFailed:
        CheckFailedExec(
            dst, dst_offset,
            std::vector<uint8_t>(src->shadow.begin() + src_offset,
                                 src->shadow.begin() + src_offset + length),
            what);
        return;
      case Verdict::kInconsistent:
        Abandon(dst, "inconsistent copy fence");
        return;
    }
  }

  void OpPin() {
    if (pinned_ != nullptr) {
      Obj* obj = pinned_;
      // It must not have moved while pinned.
      absl::StatusOr<ObjectInfo> info = cl_->GetObject(obj->handle, Call());
      Note("GetObject", info);
      if (info.ok() && info->state == ObjectState::kOk &&
          !obj->pinned_region.empty() && info->region != obj->pinned_region) {
        Flag("contract", "pinned-moved", obj,
             absl::StrCat("pinned in ", obj->pinned_region, ", found in ",
                          info->region));
      }
      if (info.ok() && info->state == ObjectState::kUnknown) {
        ExpectUnknown(obj, 0, "", "get of pinned object");
        return;
      }
      absl::StatusOr<uint32_t> u = cl_->Unpin(obj->handle, Call());
      Note("Unpin", u);
      if (!u.ok()) {
        ExpectCodes("Unpin", obj, u.status(), {});
        return;
      }
      if (*u != obj->pins - 1) {
        Flag("contract", "pin-count", obj,
             absl::StrCat("Unpin returned ", *u, ", expected ", obj->pins - 1));
      }
      obj->pins = *u;
      Log(obj, absl::StrCat("unpin -> ", *u));
      if (obj->pins == 0) pinned_ = nullptr;
      return;
    }
    Obj* obj = PickObject();
    if (obj == nullptr || obj->size > (256 << 10)) return;
    absl::StatusOr<uint32_t> p = cl_->Pin(obj->handle, Call());
    Note("Pin", p);
    if (!p.ok()) {
      Log(obj, absl::StrCat("pin: ", Short(p.status())));
      if (p.status().code() == absl::StatusCode::kDataLoss) {
        HandleDataLoss(obj, "pin");
      } else {
        ExpectCodes("Pin", obj, p.status(), {});
      }
      return;
    }
    if (*p != obj->pins + 1) {
      Flag("contract", "pin-count", obj,
           absl::StrCat("Pin returned ", *p, ", expected ", obj->pins + 1));
    }
    obj->pins = *p;
    pinned_ = obj;
    absl::StatusOr<ObjectInfo> info = cl_->GetObject(obj->handle, Call());
    Note("GetObject", info);
    obj->pinned_region = info.ok() ? info->region : "";
    Log(obj, absl::StrCat("pin -> ", *p, " in ", obj->pinned_region));
    if (rng_.Chance(0.5)) PinnedMigrate(obj);
  }

  void OpGet(Obj* obj) {
    absl::StatusOr<ObjectInfo> info = cl_->GetObject(obj->handle, Call());
    Note("GetObject", info);
    if (!info.ok()) {
      ExpectCodes("GetObject", obj, info.status(), {});
      if (info.status().code() == absl::StatusCode::kNotFound) {
        Flag("contract", "object-vanished", obj, "GetObject: object vanished");
        Forget(obj);
      }
      return;
    }
    if (info->state == ObjectState::kUnknown) {
      ExpectUnknown(obj, 0, "", "get");
      return;
    }
    std::string bad;
    if (info->size_bytes != obj->size) bad = "wrong size";
    if (info->placements != obj->placements) bad = "wrong placements";
    if (std::find(obj->placements.begin(), obj->placements.end(),
                  info->region) == obj->placements.end()) {
      bad = absl::StrCat("region ", info->region, " not among placements");
    }
    if (info->pin_count != obj->pins) {
      bad =
          absl::StrCat("pin count ", info->pin_count, ", expected ", obj->pins);
    }
    if (obj->cpu && info->region == c_.layout().lmem && !info->cpu_accessible) {
      bad = "require_cpu_access object in LMEM not cpu_accessible";
    }
    if (info->region == c_.layout().smem && !info->cpu_accessible) {
      bad = "SMEM object not cpu_accessible";
    }
    if (!bad.empty())
      Flag("contract", "object-fields", obj, "GetObject: " + bad);
  }

  void OpList() {
    absl::StatusOr<std::vector<ObjectInfo>> list =
        cl_->ListObjects(false, Call());
    Note("ListObjects", list);
    if (!list.ok()) {
      ExpectCodes("ListObjects", nullptr, list.status(), {});
      return;
    }
    absl::flat_hash_map<std::string, const ObjectInfo*> by_handle;
    for (const ObjectInfo& o : *list) by_handle[o.handle] = &o;
    std::vector<Obj*> unknown;
    for (const auto& obj : objects_) {
      auto it = by_handle.find(obj->handle);
      if (it == by_handle.end()) {
        Flag("contract", "list-missing", obj.get(),
             "ListObjects: object missing");
      } else if (it->second->state == ObjectState::kUnknown) {
        unknown.push_back(obj.get());
      }
    }
    for (Obj* obj : unknown) ExpectUnknown(obj, 0, "", "list");
  }

  void OpDestroy(Obj* obj) {
    Log(obj, "destroy");
    Destroy(obj, "destroy");
  }

  // After the campaign: faults are disarmed; check every object one last
  // time, then destroy it.
  void Finish() {
    if (!c_.unavailable()) {
      c_.faults_cleared().WaitForNotificationWithTimeout(absl::Seconds(60));
    }
    while (!objects_.empty() && !Stopped()) {
      Obj* obj = objects_.back().get();
      if (obj->pins > 0) {
        absl::StatusOr<uint32_t> u = cl_->Unpin(obj->handle, Call());
        Note("Unpin", u);
        if (u.ok()) obj->pins = *u;
      }
      if (!ReadAndCheck(obj, 0, obj->size, "final check")) continue;
      if (Stopped()) break;
      const size_t before = objects_.size();
      Destroy(obj, "final destroy");
      if (objects_.size() == before) {
        // Could not destroy it: give up on it (the accounting check will
        // say so).
        Forget(obj);
      }
    }
  }

  Campaign& c_;
  const int index_;
  Rng rng_;
  std::unique_ptr<client::Client> cl_;
  uint64_t budget_ = 0;
  uint64_t max_object_ = 0;
  uint64_t bytes_ = 0;
  uint32_t next_serial_ = 1;
  std::vector<std::unique_ptr<Obj>> objects_;
  Obj* pinned_ = nullptr;
  CampaignStats stats_;
  std::unique_ptr<ShmIo> shm_io_;  // campaign_shm.h
};

// ---------------------------------------------------------------------------
// Scheduler: the fault schedule, admin evictions, self-tests, progress and
// region invariants.

class Campaign::Scheduler {
 public:
  Scheduler(Campaign* campaign, std::unique_ptr<client::Client> cl)
      : c_(*campaign), cl_(std::move(cl)) {}

  void Run(absl::Time start) {
    const CampaignOptions& opt = c_.options();
    ScheduleOptions so;
    so.seed = opt.seed;
    so.mean_gap = opt.fault_gap;
    so.regions = {c_.layout().lmem, c_.layout().smem};
    FaultSchedule schedule(so);
    ScheduledAction next = schedule.Next();
    absl::Time next_selftest = opt.selftest_every > absl::ZeroDuration()
                                   ? start + opt.selftest_every
                                   : absl::InfiniteFuture();
    absl::Time next_progress = opt.progress_every > absl::ZeroDuration()
                                   ? start + opt.progress_every
                                   : absl::InfiniteFuture();
    absl::Time next_invariants = start + absl::Seconds(1);
    while (!c_.stopping()) {
      const absl::Time now = absl::Now();
      ClearDue(now);
      if (opt.faults && start + next.at <= now) {
        Execute(next);
        next = schedule.Next();
        continue;
      }
      if (now >= next_selftest) {
        SelfTest();
        next_selftest = absl::Now() + opt.selftest_every;
        continue;
      }
      if (now >= next_progress) {
        Progress();
        next_progress += opt.progress_every;
      }
      if (now >= next_invariants) {
        CheckRegions();
        next_invariants = now + absl::Seconds(1);
      }
      absl::Time wake =
          std::min({next_selftest, next_progress, next_invariants});
      if (opt.faults) wake = std::min(wake, start + next.at);
      for (const Armed& a : armed_) wake = std::min(wake, a.clear_at);
      c_.stop_.WaitForNotificationWithTimeout(
          std::max(wake - absl::Now(), absl::Milliseconds(1)));
    }
    if (!c_.unavailable() && opt.faults) {
      ClearAll();
    }
    c_.faults_cleared().Notify();
  }

  CampaignStats& stats() { return stats_; }

 private:
  struct Armed {
    absl::Time clear_at;
    uint64_t id = 0;
    uint64_t index = 0;
    std::string kind;
  };

  client::CallOptions Call() const {
    client::CallOptions call;
    call.timeout = c_.options().rpc_timeout;
    return call;
  }

  bool Note(const char* method, const absl::Status& s) {
    MethodStats& m = stats_.rpcs[method];
    ++m.calls;
    if (!s.ok()) {
      ++m.errors[CodeName(s)];
      c_.NoteStatus(s);
    }
    return s.ok();
  }
  template <typename T>
  bool Note(const char* method, const absl::StatusOr<T>& r) {
    return Note(method, r.status());
  }

  void Print(const std::string& line) {
    if (c_.options().print_actions) {
      Stderr(absl::StrFormat("[%9s] %s", Secs(c_.Elapsed()), line));
    }
  }

  void Execute(const ScheduledAction& a) {
    if (a.kind == ScheduledAction::Kind::kEvict) {
      absl::StatusOr<client::EvictResult> r =
          cl_->EvictRegion(a.region, false, Call());
      Note("EvictRegion", r);
      ++stats_.evict_calls;
      if (r.ok()) {
        stats_.evict_objects += r->objects_evicted;
        Print(absl::StrFormat("%s -> evicted %u (%s), skipped %u", a.ToString(),
                              r->objects_evicted, Mib(r->bytes_evicted),
                              r->objects_skipped));
      } else {
        Print(absl::StrCat(a.ToString(), " -> ", Short(r.status())));
        if (!AlwaysOk(r.status())) {
          c_.AddViolation(
              "contract", "undocumented-status EvictRegion",
              absl::StrCat("EvictRegion ", a.region, ": ", Short(r.status())));
        }
      }
      return;
    }
    const std::string kind = client::FaultKindName(a.spec.kind);
    absl::StatusOr<client::FaultInfo> r = cl_->InjectFault(a.spec, Call());
    Note("InjectFault", r);
    if (!r.ok()) {
      ++stats_.fault_inject_refused;
      Print(absl::StrCat(a.ToString(), " -> ", Short(r.status())));
      if (!AlwaysOk(r.status()) &&
          r.status().code() != absl::StatusCode::kResourceExhausted) {
        c_.AddViolation("contract", "undocumented-status InjectFault",
                        absl::StrCat("InjectFault ", a.ToString(), ": ",
                                     Short(r.status())));
      }
      return;
    }
    ++stats_.faults_injected[kind];
    armed_.push_back({absl::Now() + a.hold, r->id, a.index, kind});
    Print(absl::StrCat(a.ToString(), " -> fault ", r->id));
  }

  static bool AlwaysOk(const absl::Status& s) {
    return s.code() == absl::StatusCode::kUnavailable ||
           s.code() == absl::StatusCode::kDeadlineExceeded;
  }

  // Disarms the faults whose hold has ended, recording their fired counts.
  void ClearDue(absl::Time now) {
    bool any = false;
    for (const Armed& a : armed_) any |= a.clear_at <= now;
    if (!any) return;
    absl::StatusOr<std::vector<client::FaultInfo>> list =
        cl_->ListFaults(Call());
    Note("ListFaults", list);
    std::vector<Armed> keep;
    for (const Armed& a : armed_) {
      if (a.clear_at > now) {
        keep.push_back(a);
        continue;
      }
      uint64_t fired = 0;
      if (list.ok()) {
        for (const client::FaultInfo& f : *list) {
          if (f.id == a.id) fired = f.fired_count;
        }
      }
      stats_.faults_fired[a.kind] += fired;
      absl::StatusOr<uint32_t> cleared = cl_->ClearFaults(a.id, Call());
      Note("ClearFaults", cleared);
      Print(absl::StrFormat(
          "#%u clear fault %u fired=%u%s", a.index, a.id, fired,
          cleared.ok() ? "" : " (" + Short(cleared.status()) + ")"));
    }
    armed_ = std::move(keep);
  }

  void ClearAll() {
    for (Armed& a : armed_) a.clear_at = absl::InfinitePast();
    ClearDue(absl::Now());
    absl::StatusOr<uint32_t> cleared = cl_->ClearFaults(0, Call());
    Note("ClearFaults", cleared);
  }

  void SelfTest() {
    const bool with_faults = c_.options().faults;
    Print(
        absl::StrCat("selftest", with_faults ? " --with-faults" : "", " ..."));
    absl::StatusOr<client::SelfTestResult> r =
        cl_->SelfTest(0, with_faults, Call());
    Note("SelfTest", r);
    ++stats_.selftests;
    if (!r.ok()) {
      Print(absl::StrCat("selftest -> ", Short(r.status())));
      if (!AlwaysOk(r.status()) &&
          r.status().code() != absl::StatusCode::kResourceExhausted &&
          r.status().code() != absl::StatusCode::kFailedPrecondition) {
        c_.AddViolation("selftest", "selftest-error",
                        "SelfTest: " + Short(r.status()));
      }
      return;
    }
    Print(absl::StrFormat(
        "selftest -> %s, %u objects checked, %s of canaries, %u violations",
        r->passed ? "passed" : "FAILED", r->objects_checked,
        Mib(r->canary_bytes_written), r->violations));
    if (r->passed) ++stats_.selftests_passed;
    if (!r->passed || r->violations > 0) {
      c_.AddViolation(
          "selftest", "selftest-violations",
          absl::StrCat("SelfTest reported ", r->violations,
                       " violations: ", absl::StrJoin(r->details, "; ")));
    }
  }

  void Progress() {
    const double secs = absl::ToDoubleSeconds(c_.Elapsed());
    const uint64_t ops = c_.live_ops().load(std::memory_order_relaxed);
    Stderr(absl::StrFormat(
        "[%9s] progress: %u ops (%.0f/s), %u unknown-state objects, %u "
        "violations",
        Secs(c_.Elapsed()), ops, secs > 0 ? ops / secs : 0.0,
        c_.live_unknown().load(std::memory_order_relaxed), c_.violations()));
  }

  void CheckRegions() {
    absl::StatusOr<std::vector<client::RegionInfo>> regions =
        cl_->ListRegions(Call());
    Note("ListRegions", regions);
    if (!regions.ok()) return;
    for (const client::RegionInfo& r : *regions) {
      if (r.allocated_bytes > r.size_bytes ||
          r.allocated_bytes + r.free_bytes != r.size_bytes ||
          r.aperture_allocated_bytes > r.aperture_bytes ||
          r.aperture_allocated_bytes > r.allocated_bytes) {
        c_.AddViolation(
            "accounting", "region-invariant",
            absl::StrFormat("region %s: size %u, allocated %u, free %u, "
                            "aperture %u, aperture allocated %u",
                            r.name, r.size_bytes, r.allocated_bytes,
                            r.free_bytes, r.aperture_bytes,
                            r.aperture_allocated_bytes));
      }
    }
  }

  Campaign& c_;
  std::unique_ptr<client::Client> cl_;
  std::vector<Armed> armed_;
  CampaignStats stats_;
};

// ---------------------------------------------------------------------------
// Campaign

Campaign::Campaign(CampaignOptions options) : options_(std::move(options)) {}
Campaign::~Campaign() = default;

bool Campaign::TakeOp() {
  if (stopping()) return false;
  return ops_left_.fetch_sub(1, std::memory_order_relaxed) > 0;
}

void Campaign::AddViolation(const std::string& check, const std::string& key,
                            const std::string& what) {
  const bool known = options_.known_issues.count(key) > 0;
  const absl::Duration at = Elapsed();
  uint64_t n = 0;
  uint64_t same = 0;
  {
    MutexLock lock(&mu_);
    if (known) {
      same = ++known_counts_[key];
    } else {
      n = violations_.fetch_add(1, std::memory_order_relaxed) + 1;
      same = ++violation_counts_[key];
    }
    if (same <= kExamplesPerKey &&
        violation_list_.size() < kMaxViolationsKept) {
      violation_list_.push_back({check, key, what, at, known});
    }
  }
  // Print the first few of each kind in full; count the rest.
  if (same <= kExamplesPerKey) {
    if (known) {
      Stderr(absl::StrFormat("[%9s] known issue (%s, %s) seed=%u: %s", Secs(at),
                             check, key, options_.seed, what));
    } else {
      Stderr(absl::StrFormat("[%9s] VIOLATION #%u (%s, %s) seed=%u: %s",
                             Secs(at), n, check, key, options_.seed, what));
    }
    if (same == kExamplesPerKey) {
      Stderr(
          absl::StrFormat("[%9s] (further \"%s\" findings are only "
                          "counted)",
                          Secs(at), key));
    }
  }
}

void Campaign::NoteStatus(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kUnavailable) return;
  bool expected = false;
  if (!unavailable_.compare_exchange_strong(expected, true,
                                            std::memory_order_acq_rel)) {
    return;
  }
  const absl::Duration at = Elapsed();
  {
    MutexLock lock(&mu_);
    unavailable_message_ = std::string(status.message());
    unavailable_at_ = at;
    unavailable_time_ = absl::Now();
  }
  Stderr(absl::StrFormat("[%9s] daemon UNAVAILABLE (%s): stopping the campaign",
                         Secs(at), status.message()));
  Stop();
}

absl::Status Campaign::Setup(client::Client* admin) {
  client::CallOptions call;
  call.timeout = options_.rpc_timeout;
  absl::StatusOr<client::DaemonInfo> info = admin->GetInfo(call);
  if (!info.ok()) return info.status();
  if (options_.faults &&
      (!info->fault_injection_enabled || !info->caller.is_admin)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--faults needs an admin caller and a daemon started with "
        "--enable_fault_injection (caller ",
        info->caller.name, info->caller.is_admin ? " is" : " is not",
        " admin; fault injection ",
        info->fault_injection_enabled ? "enabled" : "disabled",
        "); run with --faults=false otherwise"));
  }
  absl::StatusOr<std::vector<client::RegionInfo>> regions =
      admin->ListRegions(call);
  if (!regions.ok()) return regions.status();
  for (const client::RegionInfo& r : *regions) {
    if (r.kind == client::RegionKind::kLmem && layout_.lmem.empty()) {
      layout_.lmem = r.name;
      layout_.lmem_size = r.size_bytes;
      layout_.lmem_aperture = r.aperture_bytes;
    }
    if (r.kind == client::RegionKind::kSmem && layout_.smem.empty()) {
      layout_.smem = r.name;
      layout_.smem_size = r.size_bytes;
    }
  }
  if (layout_.lmem.empty() || layout_.smem.empty()) {
    return absl::FailedPreconditionError(
        "the daemon needs an LMEM and an SMEM region");
  }
  baseline_regions_ = *regions;
  absl::StatusOr<client::DaemonStats> stats = admin->GetStats(call);
  if (!stats.ok()) return stats.status();
  baseline_stats_ = *stats;
  return absl::OkStatus();
}

void Campaign::Watcher(client::WatchCanceller* canceller,
                       CampaignStats* stats) {
  absl::StatusOr<std::unique_ptr<client::Client>> cl =
      client::Client::Connect(options_.connect);
  if (!cl.ok()) return;
  client::WatchOptions w;
  w.all_principals = options_.faults;  // admin
  client::CallOptions call;
  call.timeout = absl::InfiniteDuration();
  absl::Status s = (*cl)->Watch(
      w,
      [&](const client::WatchEvent& e) {
        ++stats->events[client::EventKindName(e.kind)];
        return true;
      },
      canceller, call);
  ++stats->rpcs["Watch"].calls;
  if (!s.ok()) ++stats->rpcs["Watch"].errors[CodeName(s)];
}

void Campaign::CheckAccounting(client::Client* admin, CampaignResult* result) {
  client::CallOptions call;
  call.timeout = options_.rpc_timeout;
  const absl::Time deadline = absl::Now() + options_.drain_timeout;
  std::string left;
  while (true) {
    left.clear();
    absl::StatusOr<std::vector<client::RegionInfo>> regions =
        admin->ListRegions(call);
    absl::StatusOr<client::DaemonStats> stats = admin->GetStats(call);
    if (!regions.ok() || !stats.ok()) {
      left =
          absl::StrCat("cannot read the regions: ",
                       Short(regions.ok() ? stats.status() : regions.status()));
    } else {
      result->regions_after = *regions;
      for (const client::RegionInfo& r : *regions) {
        const client::RegionInfo* base = nullptr;
        for (const client::RegionInfo& b : baseline_regions_) {
          if (b.name == r.name) base = &b;
        }
        if (base == nullptr) continue;
        if (r.allocated_bytes != base->allocated_bytes ||
            r.aperture_allocated_bytes != base->aperture_allocated_bytes ||
            r.objects != base->objects) {
          absl::StrAppendFormat(
              &left,
              "region %s: allocated %u (before %u), aperture allocated %u "
              "(before %u), objects %u (before %u); ",
              r.name, r.allocated_bytes, base->allocated_bytes,
              r.aperture_allocated_bytes, base->aperture_allocated_bytes,
              r.objects, base->objects);
        }
      }
      if (stats->objects != baseline_stats_.objects ||
          stats->unknown_state_objects !=
              baseline_stats_.unknown_state_objects) {
        absl::StrAppendFormat(
            &left, "daemon: objects %u (before %u), unknown %u (before %u); ",
            stats->objects, baseline_stats_.objects,
            stats->unknown_state_objects,
            baseline_stats_.unknown_state_objects);
      }
      if (stats->fences_pending != 0) {
        absl::StrAppendFormat(&left, "daemon: %u fences pending; ",
                              stats->fences_pending);
      }
    }
    if (left.empty() || absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  // No object of this campaign may be left.
  absl::StatusOr<std::vector<ObjectInfo>> mine =
      admin->ListObjects(false, call);
  if (mine.ok()) {
    const std::string prefix = absl::StrFormat("torture-%u-", options_.seed);
    for (const ObjectInfo& o : *mine) {
      if (absl::StartsWith(o.label, prefix)) {
        absl::StrAppend(&left, "object ", o.handle, " (", o.label,
                        ") still exists; ");
      }
    }
  }
  result->accounting_checked = true;
  if (left.empty()) {
    result->accounting = "ok";
  } else {
    result->accounting = left;
    AddViolation("accounting", "not-drained",
                 absl::StrCat("after everything was destroyed (waited up to ",
                              absl::FormatDuration(options_.drain_timeout),
                              "): ", left));
  }
  // Once drained, each region's unknown-state gauge ("how many are in
  // unknown state now", regions.proto) is back where it was too.
  std::string gauge;
  for (const client::RegionInfo& r : result->regions_after) {
    for (const client::RegionInfo& b : baseline_regions_) {
      if (b.name == r.name &&
          r.unknown_state_objects != b.unknown_state_objects) {
        absl::StrAppendFormat(&gauge,
                              "region %s: unknown_state_objects %u with %u "
                              "objects (before %u); ",
                              r.name, r.unknown_state_objects, r.objects,
                              b.unknown_state_objects);
      }
    }
  }
  if (!gauge.empty()) {
    if (result->accounting == "ok") result->accounting = "ok (but see below)";
    AddViolation("accounting", "region-unknown-gauge",
                 absl::StrCat("Region.unknown_state_objects does not drop "
                              "when unknown objects are destroyed: ",
                              gauge));
  }
  for (const client::RegionInfo& r : result->regions_after) {
    for (const client::RegionInfo& b : baseline_regions_) {
      if (b.name != r.name) continue;
      result->region_deltas[r.name] = r.counters - b.counters;
    }
  }
}

absl::StatusOr<CampaignResult> Campaign::Run() {
  if (options_.clients < 1 || options_.clients > 1024) {
    return absl::InvalidArgumentError("--clients must be in [1, 1024]");
  }
  if (options_.ops <= 0 && options_.duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("give --ops or --duration (or both)");
  }
  if (!(options_.oversubscribe > 0 && options_.oversubscribe <= 16)) {
    return absl::InvalidArgumentError("--oversubscribe must be in (0, 16]");
  }
  if (options_.max_object_bytes < 4096 ||
      options_.max_object_bytes % 4096 != 0) {
    return absl::InvalidArgumentError(
        "--max_object_bytes must be a positive multiple of 4096");
  }
  absl::StatusOr<std::unique_ptr<client::Client>> admin =
      client::Client::Connect(options_.connect);
  if (!admin.ok()) return admin.status();
  absl::Status setup = Setup(admin->get());
  if (!setup.ok()) return setup;

  CampaignResult result;
  result.seed = options_.seed;
  result.target = (*admin)->target();
  result.clients = options_.clients;
  result.regions_before = baseline_regions_;
  ops_left_.store(options_.ops > 0 ? options_.ops
                                   : std::numeric_limits<int64_t>::max());

  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < options_.clients; ++i) {
    absl::StatusOr<std::unique_ptr<client::Client>> cl =
        client::Client::Connect(options_.connect);
    if (!cl.ok()) return cl.status();
    workers.push_back(std::make_unique<Worker>(this, i, *std::move(cl)));
  }
  absl::StatusOr<std::unique_ptr<client::Client>> sched_client =
      client::Client::Connect(options_.connect);
  if (!sched_client.ok()) return sched_client.status();
  Scheduler scheduler(this, *std::move(sched_client));
  absl::StatusOr<std::unique_ptr<client::Client>> killer_client =
      client::Client::Connect(options_.connect);
  if (!killer_client.ok()) return killer_client.status();
  ShmKiller shm_killer(this, *std::move(killer_client));
  absl::StatusOr<std::unique_ptr<client::Client>> batch_client =
      client::Client::Connect(options_.connect);  // campaign_batch.h
  if (!batch_client.ok()) return batch_client.status();
  BatchClient batcher(this, options_.clients, *std::move(batch_client));

  start_ = absl::Now();
  std::atomic<int> running{options_.clients};
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    Worker* worker = w.get();
    threads.emplace_back([worker, &running] {
      worker->Run();
      running.fetch_sub(1, std::memory_order_acq_rel);
    });
  }
  std::thread sched_thread([&] { scheduler.Run(start_); });
  std::thread shm_thread([&] { shm_killer.Run(); });
  threads.emplace_back([&batcher] { batcher.Run(); });
  client::WatchCanceller canceller;
  CampaignStats watch_stats;
  std::thread watch_thread([&] { Watcher(&canceller, &watch_stats); });

  const absl::Time end = options_.duration > absl::ZeroDuration()
                             ? start_ + options_.duration
                             : absl::InfiniteFuture();
  // The clients run until the budget or the time is spent; during the final
  // pass (faults disarmed) only the clients run.
  while (!stopping() && absl::Now() < end) {
    // In --ops mode the clients stop by themselves; stop the rest then.
    if (ops_left_.load(std::memory_order_relaxed) <= 0) break;
    if (running.load(std::memory_order_acquire) == 0) break;
    stop_.WaitForNotificationWithTimeout(
        std::min(absl::Milliseconds(50), end - absl::Now()));
  }
  Stop();
  sched_thread.join();
  shm_thread.join();
  for (std::thread& t : threads) t.join();
  canceller.Cancel();
  watch_thread.join();
  result.elapsed = absl::Now() - start_;

  for (auto& w : workers) result.stats.Merge(w->stats());
  result.stats.Merge(scheduler.stats());
  result.stats.Merge(batcher.stats());
  result.stats.Merge(watch_stats);
  result.stats.Merge(shm_killer.stats());

  if (unavailable()) {
    MutexLock lock(&mu_);
    result.unavailable = true;
    result.unavailable_message = unavailable_message_;
    result.unavailable_at = unavailable_at_;
    result.unavailable_to_exit = absl::Now() - unavailable_time_;
  } else {
    CheckAccounting(admin->get(), &result);
  }
  result.violations = violations();
  {
    MutexLock lock(&mu_);
    result.violation_list = violation_list_;
    result.violation_counts = violation_counts_;
    result.known_counts = known_counts_;
  }
  return result;
}

// ---------------------------------------------------------------------------
// Summary

namespace {

std::string JoinCounts(const std::map<std::string, uint64_t>& m) {
  if (m.empty()) return "-";
  std::vector<std::string> parts;
  for (const auto& [k, v] : m) parts.push_back(absl::StrCat(k, " ", v));
  return absl::StrJoin(parts, ", ");
}

uint64_t Sum(const std::map<std::string, uint64_t>& m) {
  uint64_t n = 0;
  for (const auto& [k, v] : m) n += v;
  return n;
}

std::string JsonCounts(const std::map<std::string, uint64_t>& m) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : m)
    parts.push_back(JsonQuote(k) + ":" + absl::StrCat(v));
  return "{" + absl::StrJoin(parts, ",") + "}";
}

struct Totals {
  uint64_t rpcs = 0;
  std::map<std::string, uint64_t> errors;
  uint64_t fallback_copy = 0, fallback_clear = 0, unknown_outcomes = 0,
           failed_outcomes = 0;
  client::RegionCounters daemon;
};

Totals ComputeTotals(const CampaignResult& r) {
  Totals t;
  for (const auto& [method, m] : r.stats.rpcs) {
    t.rpcs += m.calls;
    for (const auto& [code, n] : m.errors) t.errors[code] += n;
  }
  for (const auto& [k, v] : r.stats.outcomes) {
    if (absl::StrContains(k, "/FALLBACK_") && absl::EndsWith(k, "COPY")) {
      t.fallback_copy += v;
    }
    if (absl::StrContains(k, "/FALLBACK_") && absl::EndsWith(k, "CLEAR")) {
      t.fallback_clear += v;
    }
    if (absl::EndsWith(k, "/UNKNOWN_STATE")) t.unknown_outcomes += v;
    if (absl::EndsWith(k, "/FAILED")) t.failed_outcomes += v;
  }
  for (const auto& [name, d] : r.region_deltas) t.daemon += d;
  return t;
}

}  // namespace

std::string FormatSummary(const CampaignResult& r) {
  const CampaignStats& s = r.stats;
  const Totals t = ComputeTotals(r);
  const double secs = std::max(absl::ToDoubleSeconds(r.elapsed), 1e-9);
  std::string out;
  auto line = [&](absl::string_view key, const std::string& value) {
    absl::StrAppendFormat(&out, "  %-22s %s\n", key, value);
  };
  out += "gpumig-torture summary\n";
  line("seed", absl::StrCat(r.seed, "  (replay: --seed=", r.seed, ")"));
  line("target", r.target);
  line("clients", absl::StrCat(r.clients));
  line("elapsed", Secs(r.elapsed));
  line("operations", absl::StrFormat("%u (%.0f/s)", s.ops, s.ops / secs));
  line("ops by kind", JoinCounts(s.ops_by_kind));
  line("rpcs", absl::StrFormat("%u (%.0f/s); errors: %s", t.rpcs, t.rpcs / secs,
                               JoinCounts(t.errors)));
  line("bytes",
       absl::StrFormat("written %s, read %s, checksummed %s, verified %s",
                       Mib(s.bytes_written), Mib(s.bytes_read),
                       Mib(s.bytes_checksummed), Mib(s.bytes_verified)));
  line("objects", absl::StrFormat("created %u, destroyed %u, abandoned %u",
                                  s.objects_created, s.objects_destroyed,
                                  s.abandoned_objects));
  line("fence outcomes", JoinCounts(s.outcomes));
  line("faults injected",
       absl::StrFormat("%u: %s (refused %u)", Sum(s.faults_injected),
                       JoinCounts(s.faults_injected), s.fault_inject_refused));
  line("faults fired", absl::StrFormat("%u: %s", Sum(s.faults_fired),
                                       JoinCounts(s.faults_fired)));
  line("admin evictions",
       absl::StrFormat("%u calls, %u objects", s.evict_calls, s.evict_objects));
  line("fallbacks (clients)",
       absl::StrFormat("copy %u, clear %u", t.fallback_copy, t.fallback_clear));
  if (!r.region_deltas.empty()) {
    line("daemon counters",
         absl::StrFormat("evictions %u, blits %u, blit failures %u, "
                         "fallback copies %u, fallback clears %u, "
                         "unknown-state marks %u, migrated %s",
                         t.daemon.evictions, t.daemon.blits,
                         t.daemon.blit_failures, t.daemon.fallback_copies,
                         t.daemon.fallback_clears, t.daemon.unknown_state_marks,
                         Mib(t.daemon.bytes_migrated_in)));
  }
  line("unknown-state objects",
       absl::StrFormat("%u (by cause: %s)", Sum(s.unknown_objects),
                       JoinCounts(s.unknown_objects)));
  line("fences aged out", absl::StrCat(s.fences_aged_out));
  line("exec failed (checked)", absl::StrCat(s.exec_failed));
  line("selftests",
       absl::StrFormat("%u run, %u passed", s.selftests, s.selftests_passed));
  line("watch events", JoinCounts(s.events));
  if (r.unavailable) {
    line("daemon", absl::StrFormat(
                       "UNAVAILABLE at %s (%s); all clients returned %s later",
                       Secs(r.unavailable_at), r.unavailable_message,
                       Secs(r.unavailable_to_exit)));
  }
  line("final accounting",
       r.accounting_checked ? r.accounting : std::string("not checked"));
  line("known issues", absl::StrFormat("%u: %s", Sum(r.known_counts),
                                       JoinCounts(r.known_counts)));
  line("violations",
       absl::StrFormat("%u: %s", r.violations, JoinCounts(r.violation_counts)));
  for (const Violation& v : r.violation_list) {
    absl::StrAppendFormat(&out, "    [%s] %s%s (%s): %s\n", Secs(v.at),
                          v.known ? "known issue " : "", v.key, v.check,
                          v.what);
  }
  return out;
}

std::string FormatSummaryJson(const CampaignResult& r) {
  const CampaignStats& s = r.stats;
  const Totals t = ComputeTotals(r);
  const double secs = std::max(absl::ToDoubleSeconds(r.elapsed), 1e-9);
  std::vector<std::string> f;
  auto kv = [&](absl::string_view k, const std::string& v) {
    f.push_back(JsonQuote(k) + ":" + v);
  };
  kv("seed", absl::StrCat(r.seed));
  kv("target", JsonQuote(r.target));
  kv("clients", absl::StrCat(r.clients));
  kv("elapsed_s", absl::StrFormat("%.3f", secs));
  kv("ops", absl::StrCat(s.ops));
  kv("ops_per_s", absl::StrFormat("%.1f", s.ops / secs));
  kv("ops_by_kind", JsonCounts(s.ops_by_kind));
  kv("rpcs", absl::StrCat(t.rpcs));
  kv("rpc_errors", JsonCounts(t.errors));
  kv("bytes_written", absl::StrCat(s.bytes_written));
  kv("bytes_read", absl::StrCat(s.bytes_read));
  kv("bytes_checksummed", absl::StrCat(s.bytes_checksummed));
  kv("bytes_verified", absl::StrCat(s.bytes_verified));
  kv("objects_created", absl::StrCat(s.objects_created));
  kv("objects_destroyed", absl::StrCat(s.objects_destroyed));
  kv("objects_abandoned", absl::StrCat(s.abandoned_objects));
  kv("fence_outcomes", JsonCounts(s.outcomes));
  kv("faults_injected", JsonCounts(s.faults_injected));
  kv("faults_fired", JsonCounts(s.faults_fired));
  kv("fault_inject_refused", absl::StrCat(s.fault_inject_refused));
  kv("fallbacks", absl::StrFormat("{\"copy\":%u,\"clear\":%u}", t.fallback_copy,
                                  t.fallback_clear));
  kv("daemon_counters",
     absl::StrFormat("{\"evictions\":%u,\"blits\":%u,\"blit_failures\":%u,"
                     "\"fallback_copies\":%u,\"fallback_clears\":%u,"
                     "\"unknown_state_marks\":%u,\"bytes_migrated\":%u}",
                     t.daemon.evictions, t.daemon.blits, t.daemon.blit_failures,
                     t.daemon.fallback_copies, t.daemon.fallback_clears,
                     t.daemon.unknown_state_marks, t.daemon.bytes_migrated_in));
  kv("unknown_state_objects", absl::StrCat(Sum(s.unknown_objects)));
  kv("unknown_state_by_cause", JsonCounts(s.unknown_objects));
  kv("fences_aged_out", absl::StrCat(s.fences_aged_out));
  kv("exec_failed", absl::StrCat(s.exec_failed));
  kv("admin_evictions", absl::StrCat(s.evict_calls));
  kv("selftests", absl::StrCat(s.selftests));
  kv("selftests_passed", absl::StrCat(s.selftests_passed));
  kv("watch_events", JsonCounts(s.events));
  kv("unavailable", r.unavailable ? "true" : "false");
  if (r.unavailable) {
    kv("unavailable_message", JsonQuote(r.unavailable_message));
    kv("unavailable_at_s",
       absl::StrFormat("%.3f", absl::ToDoubleSeconds(r.unavailable_at)));
    kv("unavailable_to_exit_s",
       absl::StrFormat("%.3f", absl::ToDoubleSeconds(r.unavailable_to_exit)));
  }
  kv("accounting",
     JsonQuote(r.accounting_checked ? r.accounting : "not checked"));
  kv("violations", absl::StrCat(r.violations));
  kv("violation_counts", JsonCounts(r.violation_counts));
  kv("known_issue_counts", JsonCounts(r.known_counts));
  std::vector<std::string> vs;
  for (const Violation& v : r.violation_list) {
    vs.push_back(absl::StrFormat(
        "{\"at_s\":%.3f,\"check\":%s,\"key\":%s,\"known\":%s,"
        "\"what\":%s}",
        absl::ToDoubleSeconds(v.at), JsonQuote(v.check), JsonQuote(v.key),
        v.known ? "true" : "false", JsonQuote(v.what)));
  }
  kv("violation_list", "[" + absl::StrJoin(vs, ",") + "]");
  return "{" + absl::StrJoin(f, ",") + "}";
}

}  // namespace gpumig::torture
