#include "tests/torture/schedule.h"

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace gpumig::torture {
namespace {

std::vector<std::string> Lines(uint64_t seed, int n) {
  ScheduleOptions o;
  o.seed = seed;
  o.regions = {"lmem", "smem"};
  FaultSchedule schedule(o);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(schedule.Next().ToString());
  return out;
}

TEST(FaultScheduleTest, SameSeedReplaysTheSameSchedule) {
  EXPECT_EQ(Lines(1234, 500), Lines(1234, 500));
  EXPECT_NE(Lines(1234, 50), Lines(1235, 50));
}

TEST(FaultScheduleTest, TimesNeverDecreaseAndIndicesCount) {
  ScheduleOptions o;
  o.seed = 7;
  o.regions = {"lmem", "smem"};
  FaultSchedule schedule(o);
  absl::Duration last;
  for (uint64_t i = 1; i <= 2000; ++i) {
    ScheduledAction a = schedule.Next();
    EXPECT_EQ(a.index, i);
    EXPECT_GE(a.at, last);
    last = a.at;
  }
}

TEST(FaultScheduleTest, EveryKindAndActionShowsUp) {
  ScheduleOptions o;
  o.seed = 99;
  o.regions = {"lmem", "smem"};
  FaultSchedule schedule(o);
  std::map<std::string, int> kinds;
  int evictions = 0, probability = 0, next_n = 0, always = 0;
  for (int i = 0; i < 2000; ++i) {
    ScheduledAction a = schedule.Next();
    if (a.kind == ScheduledAction::Kind::kEvict) {
      ++evictions;
      EXPECT_TRUE(a.region == "lmem" || a.region == "smem");
      continue;
    }
    ++kinds[client::FaultKindName(a.spec.kind)];
    EXPECT_GT(a.hold, absl::ZeroDuration());
    const int triggers =
        (a.spec.next_n > 0) + a.spec.probability.has_value() + a.spec.always;
    EXPECT_EQ(triggers, 1) << a.ToString();
    next_n += a.spec.next_n > 0;
    always += a.spec.always;
    if (a.spec.probability.has_value()) {
      ++probability;
      EXPECT_NE(a.spec.seed, 0u) << "the daemon's draws must replay too";
      EXPECT_GE(*a.spec.probability, 0.0);
      EXPECT_LE(*a.spec.probability, 1.0);
    }
    const bool engine = a.spec.kind == client::FaultKind::kWedgeEngine ||
                        a.spec.kind == client::FaultKind::kEngineLatency;
    if (engine) {
      EXPECT_EQ(a.spec.op, client::FenceKind::kUnspecified);
    }
    EXPECT_NE(a.spec.op, client::FenceKind::kExec);
    EXPECT_EQ(a.spec.latency_us > 0,
              a.spec.kind == client::FaultKind::kEngineLatency);
  }
  for (const char* k : {"FAIL_BLIT", "FAIL_CLEAR", "FAIL_WORK_ALLOCATION",
                        "BAN_MEMCPY", "WEDGE_ENGINE", "ENGINE_LATENCY"}) {
    EXPECT_GT(kinds[k], 20) << k;
  }
  EXPECT_GT(evictions, 50);
  EXPECT_GT(probability, 50);
  EXPECT_GT(next_n, 50);
  EXPECT_GT(always, 50);
}

TEST(FaultScheduleTest, MeanGapIsRespected) {
  ScheduleOptions o;
  o.seed = 3;
  o.regions = {"lmem", "smem"};
  o.mean_gap = absl::Milliseconds(100);
  FaultSchedule schedule(o);
  ScheduledAction a;
  // Pairs of faults share a time, so count distinct times.
  int distinct = 0;
  absl::Duration last = -absl::Seconds(1);
  for (int i = 0; i < 3000; ++i) {
    a = schedule.Next();
    if (a.at != last) ++distinct;
    last = a.at;
  }
  const double mean_ms = absl::ToDoubleMilliseconds(a.at) / distinct;
  EXPECT_GT(mean_ms, 80);
  EXPECT_LT(mean_ms, 120);
}

}  // namespace
}  // namespace gpumig::torture
