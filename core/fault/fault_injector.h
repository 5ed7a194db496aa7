// FaultInjector: runtime fault knobs, after i915's selftest switches
// (fail_gpu_migration, fail_work_allocation, ban_memcpy) plus an engine wedge
// and added engine latency.
//
// A fault has a kind, a trigger (always / the next N matching events /
// probability p from a seeded generator, so a schedule replays), and a scope
// (a region name and an operation; empty matches all). Every query that
// matches a fault and makes it fire increments that fault's fired count.
//
// Operations are what the Migrator is doing: "clear" (creating an object),
// "copy" (migrate), "evict". The scope's region is the destination region.
//
// Thread-safe.
#ifndef GPUMIG_CORE_FAULT_FAULT_INJECTOR_H_
#define GPUMIG_CORE_FAULT_FAULT_INJECTOR_H_

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace gpumig {

enum class FaultKind {
  kFailBlit,            // a copy blit fails (after clearing its destination)
  kFailClear,           // a clear blit fails (destination left untouched)
  kFailWorkAllocation,  // the failsafe work cannot be set up
  kBanMemcpy,           // the CPU fallback is not allowed
  kWedgeEngine,         // every engine command fails until cleared
  kEngineLatency,       // each engine command takes `latency` longer
};
absl::string_view FaultKindName(FaultKind kind);
absl::StatusOr<FaultKind> ParseFaultKind(absl::string_view name);

enum class FaultTrigger { kAlways, kNextN, kProbability };

struct FaultSpec {
  FaultKind kind = FaultKind::kFailBlit;
  FaultTrigger trigger = FaultTrigger::kAlways;
  uint32_t next_n = 0;       // kNextN: fires on the next N matching events
  double probability = 0.0;  // kProbability: in [0, 1]
  uint64_t seed = 0;         // kProbability: generator seed
  std::string region;        // "" = every region
  std::string op;            // "", "clear", "copy" or "evict"
  absl::Duration latency;    // kEngineLatency
};

struct FaultInfo {
  uint64_t id = 0;
  FaultSpec spec;
  uint64_t fired = 0;
  bool exhausted = false;  // kNextN with all N fired
  absl::Time created;      // when Add accepted it
};

class FaultInjector {
 public:
  FaultInjector() = default;
  // The longest engine latency a fault may add to one command: enough to
  // queue work behind a slow blit, short enough that the engine (and a
  // shutdown's drain) still makes progress.
  static constexpr absl::Duration kMaxLatency = absl::Seconds(10);

  FaultInjector(const FaultInjector&) = delete;
  FaultInjector& operator=(const FaultInjector&) = delete;

  // Adds a fault, stamped with its creation time (FaultInfo::created).
  // INVALID_ARGUMENT: probability outside [0,1], next_n == 0 for kNextN,
  // unknown op, latency negative or over kMaxLatency.
  // RESOURCE_EXHAUSTED: `max_listed` (non-zero) faults are listed already;
  // checked atomically with the add.
  absl::StatusOr<uint64_t> Add(const FaultSpec& spec, size_t max_listed = 0)
      ABSL_LOCKS_EXCLUDED(mu_);
  // NOT_FOUND if no such fault.
  absl::Status Remove(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  // Removes every fault; returns how many were listed.
  size_t Clear() ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<FaultInfo> List() const ABSL_LOCKS_EXCLUDED(mu_);
  // Sum of fired counts, by kind (for metrics). Monotonic: includes faults
  // since removed or cleared.
  uint64_t FiredTotal(FaultKind kind) const ABSL_LOCKS_EXCLUDED(mu_);

  // Queries. Each fires (and counts) at most one matching fault.
  bool ShouldFailBlit(absl::string_view op, absl::string_view region)
      ABSL_LOCKS_EXCLUDED(
          mu_);  // kFailBlit for copies, kFailClear for op "clear"
  bool ShouldFailWorkAllocation(absl::string_view op, absl::string_view region)
      ABSL_LOCKS_EXCLUDED(mu_);
  bool MemcpyBanned(absl::string_view op, absl::string_view region)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Engine-side: not scoped by op.
  bool EngineWedged(absl::string_view region = "") ABSL_LOCKS_EXCLUDED(mu_);
  absl::Duration EngineLatency(absl::string_view region = "")
      ABSL_LOCKS_EXCLUDED(mu_);
  // Cheap check: any wedge fault is active (health checking).
  bool AnyWedgeActive() const ABSL_LOCKS_EXCLUDED(mu_);
  // Whether any fault of `kind` is configured and not exhausted (it may
  // fire). Fires nothing.
  bool Armed(FaultKind kind) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    FaultInfo info;
    std::mt19937_64 rng;
  };
  bool Fire(FaultKind kind, absl::string_view op, absl::string_view region,
            absl::Duration* latency) ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<Entry> faults_ ABSL_GUARDED_BY(mu_);
  // Fired counts by FaultKind, never decreased (Remove/Clear keep them).
  std::array<uint64_t, 6> fired_total_ ABSL_GUARDED_BY(mu_) = {};
};

}  // namespace gpumig

#endif  // GPUMIG_CORE_FAULT_FAULT_INJECTOR_H_
