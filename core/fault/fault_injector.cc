// FaultInjector: see fault_injector.h for the contract.
//
// Matching. A query matches a fault when the kinds are equal, the fault is
// not exhausted, its region scope is empty or equal to the queried region and
// (except for the engine kinds, which ignore operations) its op scope is empty
// or equal to the queried op. Faults are tried in the order they were added;
// the first one whose trigger fires wins, so a query fires at most one fault.
//
// Triggers. kAlways fires on every match. kNextN fires on the next N matches
// and is then exhausted (it stays listed, firing no more). kProbability draws
// from the fault's own std::mt19937_64 seeded with spec.seed: the i-th match
// of that fault always makes the same decision, so a schedule replays given
// the same sequence of queries.
#include "core/fault/fault_injector.h"

#include <cmath>
#include <utility>

#include "absl/base/config.h"
#include "absl/strings/str_cat.h"
#include "core/base/mutex.h"

namespace gpumig {
namespace {

constexpr size_t kNumKinds = 6;

size_t KindIndex(FaultKind kind) { return static_cast<size_t>(kind); }

bool IsEngineKind(FaultKind kind) {
  return kind == FaultKind::kWedgeEngine || kind == FaultKind::kEngineLatency;
}

bool IsKnownOp(absl::string_view op) {
  return op.empty() || op == "clear" || op == "copy" || op == "evict";
}

// A uniform double in [0, 1) from the top 53 bits of one draw: independent of
// the standard library's distribution implementation, so replays are stable
// across toolchains.
double UniformDouble(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

}  // namespace

absl::string_view FaultKindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kFailBlit:
      return "fail_blit";
    case FaultKind::kFailClear:
      return "fail_clear";
    case FaultKind::kFailWorkAllocation:
      return "fail_work_allocation";
    case FaultKind::kBanMemcpy:
      return "ban_memcpy";
    case FaultKind::kWedgeEngine:
      return "wedge_engine";
    case FaultKind::kEngineLatency:
      return "engine_latency";
  }
  return "unknown";
}

absl::StatusOr<FaultKind> ParseFaultKind(absl::string_view name) {
  for (FaultKind kind : {FaultKind::kFailBlit, FaultKind::kFailClear,
                         FaultKind::kFailWorkAllocation, FaultKind::kBanMemcpy,
                         FaultKind::kWedgeEngine, FaultKind::kEngineLatency}) {
    if (name == FaultKindName(kind)) return kind;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown fault kind \"", name,
      "\" (expected fail_blit, fail_clear, fail_work_allocation, ban_memcpy, "
      "wedge_engine or engine_latency)"));
}

absl::StatusOr<uint64_t> FaultInjector::Add(const FaultSpec& spec,
                                            size_t max_listed) {
  if (KindIndex(spec.kind) >= kNumKinds) {
    return absl::InvalidArgumentError("unknown fault kind");
  }
  // Written so that NaN fails too.
  if (!(spec.probability >= 0.0 && spec.probability <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fault probability ", spec.probability, " is outside [0, 1]"));
  }
  switch (spec.trigger) {
    case FaultTrigger::kAlways:
    case FaultTrigger::kProbability:
      break;
    case FaultTrigger::kNextN:
      if (spec.next_n == 0) {
        return absl::InvalidArgumentError(
            "fault trigger next_n needs a count of at least 1");
      }
      break;
    default:
      return absl::InvalidArgumentError("unknown fault trigger");
  }
  if (!IsKnownOp(spec.op)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown fault operation \"", spec.op,
                     "\" (expected \"\", clear, copy or evict)"));
  }
  if (spec.latency < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fault latency ", absl::FormatDuration(spec.latency), " is negative"));
  }
  if (spec.latency > kMaxLatency) {
    return absl::InvalidArgumentError(
        absl::StrCat("fault latency ", absl::FormatDuration(spec.latency),
                     " is longer than the most allowed, ",
                     absl::FormatDuration(kMaxLatency)));
  }

  MutexLock lock(&mu_);
  if (max_listed != 0 && faults_.size() >= max_listed) {
    return absl::ResourceExhaustedError(
        absl::StrCat(max_listed, " faults are listed already; Clear some"));
  }
  Entry entry;
  entry.info.id = next_id_++;
  entry.info.spec = spec;
  entry.info.created = absl::Now();
  entry.rng.seed(spec.seed);
  faults_.push_back(std::move(entry));
  return faults_.back().info.id;
}

absl::Status FaultInjector::Remove(uint64_t id) {
  MutexLock lock(&mu_);
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (it->info.id == id) {
      faults_.erase(it);
      return absl::OkStatus();
    }
  }
  return absl::NotFoundError(absl::StrCat("no fault with id ", id));
}

size_t FaultInjector::Clear() {
  MutexLock lock(&mu_);
  const size_t n = faults_.size();
  faults_.clear();
  return n;
}

std::vector<FaultInfo> FaultInjector::List() const {
  MutexLock lock(&mu_);
  std::vector<FaultInfo> out;
  out.reserve(faults_.size());
  for (const Entry& e : faults_) out.push_back(e.info);
  return out;
}

uint64_t FaultInjector::FiredTotal(FaultKind kind) const {
  const size_t i = KindIndex(kind);
  if (i >= kNumKinds) return 0;
  MutexLock lock(&mu_);
  return fired_total_[i];
}

bool FaultInjector::Fire(FaultKind kind, absl::string_view op,
                         absl::string_view region, absl::Duration* latency) {
  static_assert(sizeof(fired_total_) / sizeof(fired_total_[0]) == kNumKinds,
                "one fired_total_ slot per FaultKind");
  MutexLock lock(&mu_);
  for (Entry& e : faults_) {
    const FaultSpec& spec = e.info.spec;
    if (spec.kind != kind || e.info.exhausted) continue;
    if (!spec.region.empty() && spec.region != region) continue;
    if (!IsEngineKind(kind) && !spec.op.empty() && spec.op != op) continue;

    bool fires = false;
    switch (spec.trigger) {
      case FaultTrigger::kAlways:
        fires = true;
        break;
      case FaultTrigger::kNextN:
        fires = true;
        break;
      case FaultTrigger::kProbability:
        fires = UniformDouble(e.rng) < spec.probability;
        break;
    }
    if (!fires) continue;

    ++e.info.fired;
    ++fired_total_[KindIndex(kind)];
    if (spec.trigger == FaultTrigger::kNextN && e.info.fired >= spec.next_n) {
      e.info.exhausted = true;
    }
    if (latency != nullptr) *latency = spec.latency;
    return true;
  }
  return false;
}

bool FaultInjector::ShouldFailBlit(absl::string_view op,
                                   absl::string_view region) {
  const FaultKind kind =
      op == "clear" ? FaultKind::kFailClear : FaultKind::kFailBlit;
  return Fire(kind, op, region, nullptr);
}

bool FaultInjector::ShouldFailWorkAllocation(absl::string_view op,
                                             absl::string_view region) {
  return Fire(FaultKind::kFailWorkAllocation, op, region, nullptr);
}

bool FaultInjector::MemcpyBanned(absl::string_view op,
                                 absl::string_view region) {
  return Fire(FaultKind::kBanMemcpy, op, region, nullptr);
}

bool FaultInjector::EngineWedged(absl::string_view region) {
  return Fire(FaultKind::kWedgeEngine, "", region, nullptr);
}

absl::Duration FaultInjector::EngineLatency(absl::string_view region) {
  absl::Duration latency = absl::ZeroDuration();
  if (!Fire(FaultKind::kEngineLatency, "", region, &latency)) {
    return absl::ZeroDuration();
  }
  return latency;
}

bool FaultInjector::Armed(FaultKind kind) const {
  MutexLock lock(&mu_);
  for (const Entry& e : faults_) {
    if (e.info.spec.kind == kind && !e.info.exhausted) return true;
  }
  return false;
}

bool FaultInjector::AnyWedgeActive() const {
  MutexLock lock(&mu_);
  for (const Entry& e : faults_) {
    if (e.info.spec.kind == FaultKind::kWedgeEngine && !e.info.exhausted) {
      // A probability-0 wedge never fires; it is not active.
      if (e.info.spec.trigger == FaultTrigger::kProbability &&
          e.info.spec.probability == 0.0) {
        continue;
      }
      return true;
    }
  }
  return false;
}

}  // namespace gpumig
