// FaultSchedule: the torture campaign's fault schedule, derived from the
// campaign seed alone. It is a stream of timed actions -- arm a fault (and
// disarm it `hold` later), or evict a region -- whose kinds, triggers, scopes,
// seeds, times and holds come from one Rng. The same seed and options give
// the same stream on every run and platform; what each fault hits depends on
// thread interleaving and is not replayed (docs/testing.md).
//
// Kinds are drawn so that every failsafe path keeps firing: FAIL_BLIT and
// FAIL_CLEAR (CPU fallback), BAN_MEMCPY alone and together with a failed
// blit or clear (unknown state), FAIL_WORK_ALLOCATION alone (synchronous
// fallback) and with BAN_MEMCPY (ABORTED / FAILED), WEDGE_ENGINE for a short
// window followed by recovery (the clear), ENGINE_LATENCY, and admin
// evictions. Probability triggers carry a seed drawn here, so the daemon's
// own draws replay too.
//
// Thread-compatible.
#ifndef GPUMIG_TESTS_TORTURE_SCHEDULE_H_
#define GPUMIG_TESTS_TORTURE_SCHEDULE_H_

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/gpumig_client.h"
#include "tests/torture/rng.h"

namespace gpumig::torture {

struct ScheduledAction {
  enum class Kind { kInject, kEvict };

  uint64_t index = 0;  // 1, 2, ... in schedule order
  absl::Duration at;   // from the start of the campaign
  Kind kind = Kind::kInject;
  client::FaultSpec spec;  // kInject
  absl::Duration hold;     // kInject: disarmed this long after arming
  std::string region;      // kEvict: the region to evict

  // One line, e.g. "#12 at 3.250s inject FAIL_BLIT next_n=3 region=lmem
  // op=MIGRATE hold=400ms". Deterministic for a given action.
  std::string ToString() const;
};

struct ScheduleOptions {
  uint64_t seed = 0;
  // Mean time between actions (exponentially distributed gaps).
  absl::Duration mean_gap = absl::Milliseconds(250);
  // Region names, as the daemon lists them; scopes and evictions pick from
  // these. Must not be empty.
  std::vector<std::string> regions;
};

class FaultSchedule {
 public:
  explicit FaultSchedule(ScheduleOptions options);

  // The next action; times never decrease.
  ScheduledAction Next();

 private:
  void Generate();
  client::FaultSpec RandomSpec(client::FaultKind kind);
  std::string RandomRegion(double scoped_probability);
  absl::Duration RandomHold(int64_t min_ms, int64_t max_ms);

  const ScheduleOptions options_;
  Rng rng_;
  absl::Duration now_;
  uint64_t next_index_ = 1;
  std::deque<ScheduledAction> pending_;
};

// Fault spec as text (kind, trigger, scope), as ToString prints it.
std::string SpecToString(const client::FaultSpec& spec);

}  // namespace gpumig::torture

#endif  // GPUMIG_TESTS_TORTURE_SCHEDULE_H_
