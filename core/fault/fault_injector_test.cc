#include "core/fault/fault_injector.h"

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

FaultSpec Spec(FaultKind kind) {
  FaultSpec spec;
  spec.kind = kind;
  return spec;
}

TEST(FaultInjectorTest, NoFaultsNeverFires) {
  FaultInjector faults;
  EXPECT_FALSE(faults.ShouldFailBlit("copy", "lmem"));
  EXPECT_FALSE(faults.ShouldFailBlit("clear", "lmem"));
  EXPECT_FALSE(faults.ShouldFailWorkAllocation("copy", "lmem"));
  EXPECT_FALSE(faults.MemcpyBanned("evict", "smem"));
  EXPECT_FALSE(faults.EngineWedged("lmem"));
  EXPECT_FALSE(faults.EngineWedged());
  EXPECT_EQ(faults.EngineLatency("lmem"), absl::ZeroDuration());
  EXPECT_FALSE(faults.AnyWedgeActive());
  EXPECT_TRUE(faults.List().empty());
}

TEST(FaultInjectorTest, AddRejectsBadSpecs) {
  FaultInjector faults;
  FaultSpec spec = Spec(FaultKind::kFailBlit);
  spec.trigger = FaultTrigger::kProbability;
  spec.probability = 1.5;
  EXPECT_EQ(faults.Add(spec).status().code(),
            absl::StatusCode::kInvalidArgument);
  spec.probability = -0.1;
  EXPECT_EQ(faults.Add(spec).status().code(),
            absl::StatusCode::kInvalidArgument);
  spec.probability = std::nan("");
  EXPECT_EQ(faults.Add(spec).status().code(),
            absl::StatusCode::kInvalidArgument);

  spec = Spec(FaultKind::kFailBlit);
  spec.trigger = FaultTrigger::kNextN;
  spec.next_n = 0;
  EXPECT_EQ(faults.Add(spec).status().code(),
            absl::StatusCode::kInvalidArgument);

  spec = Spec(FaultKind::kFailBlit);
  spec.op = "migrate";
  EXPECT_EQ(faults.Add(spec).status().code(),
            absl::StatusCode::kInvalidArgument);

  spec = Spec(FaultKind::kEngineLatency);
  spec.latency = absl::Milliseconds(-1);
  EXPECT_EQ(faults.Add(spec).status().code(),
            absl::StatusCode::kInvalidArgument);

  // Bounded, so an injected latency cannot stall the engine for an hour.
  spec.latency = FaultInjector::kMaxLatency + absl::Microseconds(1);
  absl::StatusOr<uint64_t> too_slow = faults.Add(spec);
  EXPECT_EQ(too_slow.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(too_slow.status().message().find("10s"), std::string::npos)
      << too_slow.status();

  EXPECT_TRUE(faults.List().empty());

  spec.latency = FaultInjector::kMaxLatency;
  EXPECT_TRUE(faults.Add(spec).ok());
}

TEST(FaultInjectorTest, IdsAreUniqueAndListed) {
  FaultInjector faults;
  auto a = faults.Add(Spec(FaultKind::kFailBlit));
  auto b = faults.Add(Spec(FaultKind::kBanMemcpy));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_NE(*a, 0u);
  EXPECT_NE(*a, *b);
  std::vector<FaultInfo> list = faults.List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, *a);
  EXPECT_EQ(list[0].spec.kind, FaultKind::kFailBlit);
  EXPECT_EQ(list[1].id, *b);
  EXPECT_EQ(list[1].spec.kind, FaultKind::kBanMemcpy);
}

TEST(FaultInjectorTest, AlwaysFiresAndCounts) {
  FaultInjector faults;
  ASSERT_TRUE(faults.Add(Spec(FaultKind::kBanMemcpy)).ok());
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(faults.MemcpyBanned("copy", "lmem"));
  std::vector<FaultInfo> list = faults.List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].fired, 5u);
  EXPECT_FALSE(list[0].exhausted);
  EXPECT_EQ(faults.FiredTotal(FaultKind::kBanMemcpy), 5u);
  EXPECT_EQ(faults.FiredTotal(FaultKind::kFailBlit), 0u);
}

TEST(FaultInjectorTest, NextNFiresNTimesThenExhausted) {
  FaultInjector faults;
  FaultSpec spec = Spec(FaultKind::kFailWorkAllocation);
  spec.trigger = FaultTrigger::kNextN;
  spec.next_n = 3;
  ASSERT_TRUE(faults.Add(spec).ok());
  EXPECT_TRUE(faults.ShouldFailWorkAllocation("copy", "lmem"));
  EXPECT_TRUE(faults.ShouldFailWorkAllocation("clear", "smem"));
  EXPECT_FALSE(faults.List()[0].exhausted);
  EXPECT_TRUE(faults.ShouldFailWorkAllocation("evict", "lmem"));
  EXPECT_FALSE(faults.ShouldFailWorkAllocation("copy", "lmem"));
  EXPECT_FALSE(faults.ShouldFailWorkAllocation("copy", "lmem"));
  std::vector<FaultInfo> list = faults.List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].fired, 3u);
  EXPECT_TRUE(list[0].exhausted);
}

TEST(FaultInjectorTest, NextNCountsOnlyMatchingEvents) {
  FaultInjector faults;
  FaultSpec spec = Spec(FaultKind::kFailBlit);
  spec.trigger = FaultTrigger::kNextN;
  spec.next_n = 1;
  spec.region = "lmem";
  spec.op = "evict";
  ASSERT_TRUE(faults.Add(spec).ok());
  EXPECT_FALSE(faults.ShouldFailBlit("copy", "lmem"));
  EXPECT_FALSE(faults.ShouldFailBlit("evict", "smem"));
  EXPECT_EQ(faults.List()[0].fired, 0u);
  EXPECT_TRUE(faults.ShouldFailBlit("evict", "lmem"));
  EXPECT_FALSE(faults.ShouldFailBlit("evict", "lmem"));
}

TEST(FaultInjectorTest, FailBlitAndFailClearAreSelectedByOp) {
  FaultInjector faults;
  ASSERT_TRUE(faults.Add(Spec(FaultKind::kFailClear)).ok());
  EXPECT_TRUE(faults.ShouldFailBlit("clear", "lmem"));
  EXPECT_FALSE(faults.ShouldFailBlit("copy", "lmem"));
  EXPECT_FALSE(faults.ShouldFailBlit("evict", "lmem"));
  faults.Clear();

  ASSERT_TRUE(faults.Add(Spec(FaultKind::kFailBlit)).ok());
  EXPECT_FALSE(faults.ShouldFailBlit("clear", "lmem"));
  EXPECT_TRUE(faults.ShouldFailBlit("copy", "lmem"));
  EXPECT_TRUE(faults.ShouldFailBlit("evict", "lmem"));
  EXPECT_EQ(faults.FiredTotal(FaultKind::kFailClear), 1u);
  EXPECT_EQ(faults.FiredTotal(FaultKind::kFailBlit), 2u);
}

TEST(FaultInjectorTest, RegionAndOpScope) {
  FaultInjector faults;
  FaultSpec spec = Spec(FaultKind::kBanMemcpy);
  spec.region = "smem";
  spec.op = "copy";
  ASSERT_TRUE(faults.Add(spec).ok());
  EXPECT_TRUE(faults.MemcpyBanned("copy", "smem"));
  EXPECT_FALSE(faults.MemcpyBanned("copy", "lmem"));
  EXPECT_FALSE(faults.MemcpyBanned("clear", "smem"));
  EXPECT_FALSE(faults.MemcpyBanned("evict", "smem"));
}

TEST(FaultInjectorTest, EngineFaultsIgnoreOpAndAreRegionScoped) {
  FaultInjector faults;
  FaultSpec wedge = Spec(FaultKind::kWedgeEngine);
  wedge.region = "lmem";
  wedge.op = "copy";  // ignored for engine faults
  ASSERT_TRUE(faults.Add(wedge).ok());
  EXPECT_TRUE(faults.EngineWedged("lmem"));
  EXPECT_FALSE(faults.EngineWedged("smem"));
  EXPECT_FALSE(faults.EngineWedged());
  EXPECT_TRUE(faults.AnyWedgeActive());

  FaultSpec latency = Spec(FaultKind::kEngineLatency);
  latency.latency = absl::Milliseconds(3);
  latency.op = "evict";  // ignored
  ASSERT_TRUE(faults.Add(latency).ok());
  EXPECT_EQ(faults.EngineLatency("smem"), absl::Milliseconds(3));
  EXPECT_EQ(faults.EngineLatency(), absl::Milliseconds(3));
  EXPECT_EQ(faults.FiredTotal(FaultKind::kEngineLatency), 2u);
}

TEST(FaultInjectorTest, UnscopedWedgeMatchesEveryRegion) {
  FaultInjector faults;
  ASSERT_TRUE(faults.Add(Spec(FaultKind::kWedgeEngine)).ok());
  EXPECT_TRUE(faults.EngineWedged("lmem"));
  EXPECT_TRUE(faults.EngineWedged("smem"));
  EXPECT_TRUE(faults.EngineWedged());
}

TEST(FaultInjectorTest, AQueryFiresAtMostOneFault) {
  FaultInjector faults;
  auto first = faults.Add(Spec(FaultKind::kFailBlit));
  auto second = faults.Add(Spec(FaultKind::kFailBlit));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(faults.ShouldFailBlit("copy", "lmem"));
  std::vector<FaultInfo> list = faults.List();
  EXPECT_EQ(list[0].fired, 1u);
  EXPECT_EQ(list[1].fired, 0u);
  EXPECT_EQ(faults.FiredTotal(FaultKind::kFailBlit), 1u);
}

TEST(FaultInjectorTest, ExhaustedFaultPassesToTheNext) {
  FaultInjector faults;
  FaultSpec once = Spec(FaultKind::kFailBlit);
  once.trigger = FaultTrigger::kNextN;
  once.next_n = 1;
  ASSERT_TRUE(faults.Add(once).ok());
  ASSERT_TRUE(faults.Add(Spec(FaultKind::kFailBlit)).ok());
  EXPECT_TRUE(faults.ShouldFailBlit("copy", "lmem"));
  EXPECT_TRUE(faults.ShouldFailBlit("copy", "lmem"));
  std::vector<FaultInfo> list = faults.List();
  EXPECT_EQ(list[0].fired, 1u);
  EXPECT_TRUE(list[0].exhausted);
  EXPECT_EQ(list[1].fired, 1u);
}

TEST(FaultInjectorTest, ProbabilityZeroAndOne) {
  FaultInjector faults;
  FaultSpec never = Spec(FaultKind::kFailBlit);
  never.trigger = FaultTrigger::kProbability;
  never.probability = 0.0;
  ASSERT_TRUE(faults.Add(never).ok());
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(faults.ShouldFailBlit("copy", ""));

  FaultSpec wedge = Spec(FaultKind::kWedgeEngine);
  wedge.trigger = FaultTrigger::kProbability;
  wedge.probability = 0.0;
  ASSERT_TRUE(faults.Add(wedge).ok());
  EXPECT_FALSE(faults.AnyWedgeActive());

  FaultSpec always = Spec(FaultKind::kBanMemcpy);
  always.trigger = FaultTrigger::kProbability;
  always.probability = 1.0;
  ASSERT_TRUE(faults.Add(always).ok());
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(faults.MemcpyBanned("copy", ""));
}

std::vector<bool> Schedule(uint64_t seed, double p, int n) {
  FaultInjector faults;
  FaultSpec spec = Spec(FaultKind::kFailBlit);
  spec.trigger = FaultTrigger::kProbability;
  spec.probability = p;
  spec.seed = seed;
  EXPECT_TRUE(faults.Add(spec).ok());
  std::vector<bool> out;
  for (int i = 0; i < n; ++i) out.push_back(faults.ShouldFailBlit("copy", ""));
  return out;
}

TEST(FaultInjectorTest, ProbabilityScheduleReplaysForASeed) {
  const uint64_t seed = 0x5eed1234;
  std::printf("seed = %llu\n", static_cast<unsigned long long>(seed));
  std::vector<bool> a = Schedule(seed, 0.3, 2000);
  std::vector<bool> b = Schedule(seed, 0.3, 2000);
  EXPECT_EQ(a, b);
  int fired = 0;
  for (bool f : a) fired += f;
  // 2000 draws at p = 0.3: mean 600, sd ~20.5; allow a wide margin.
  EXPECT_GT(fired, 450);
  EXPECT_LT(fired, 750);
  EXPECT_NE(a, Schedule(seed + 1, 0.3, 2000));
}

TEST(FaultInjectorTest, ProbabilityDrawsOnlyOnMatchingEvents) {
  // Non-matching queries must not advance the fault's generator.
  const uint64_t seed = 42;
  std::vector<bool> reference = Schedule(seed, 0.5, 100);

  FaultInjector faults;
  FaultSpec spec = Spec(FaultKind::kFailBlit);
  spec.trigger = FaultTrigger::kProbability;
  spec.probability = 0.5;
  spec.seed = seed;
  spec.region = "lmem";
  ASSERT_TRUE(faults.Add(spec).ok());
  std::vector<bool> got;
  for (int i = 0; i < 100; ++i) {
    EXPECT_FALSE(faults.ShouldFailBlit("copy", "smem"));
    got.push_back(faults.ShouldFailBlit("copy", "lmem"));
  }
  EXPECT_EQ(got, reference);
}

TEST(FaultInjectorTest, RemoveAndClear) {
  FaultInjector faults;
  auto id = faults.Add(Spec(FaultKind::kWedgeEngine));
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(faults.EngineWedged("lmem"));
  EXPECT_TRUE(faults.Remove(*id).ok());
  EXPECT_FALSE(faults.EngineWedged("lmem"));
  EXPECT_FALSE(faults.AnyWedgeActive());
  EXPECT_EQ(faults.Remove(*id).code(), absl::StatusCode::kNotFound);
  // Totals are monotonic.
  EXPECT_EQ(faults.FiredTotal(FaultKind::kWedgeEngine), 1u);

  ASSERT_TRUE(faults.Add(Spec(FaultKind::kFailBlit)).ok());
  ASSERT_TRUE(faults.Add(Spec(FaultKind::kBanMemcpy)).ok());
  faults.Clear();
  EXPECT_TRUE(faults.List().empty());
  EXPECT_FALSE(faults.ShouldFailBlit("copy", "lmem"));
  // Ids are not reused after Clear.
  auto next = faults.Add(Spec(FaultKind::kFailBlit));
  ASSERT_TRUE(next.ok());
  EXPECT_GT(*next, *id + 2);
}

TEST(FaultInjectorTest, KindNamesRoundTrip) {
  for (FaultKind kind : {FaultKind::kFailBlit, FaultKind::kFailClear,
                         FaultKind::kFailWorkAllocation, FaultKind::kBanMemcpy,
                         FaultKind::kWedgeEngine, FaultKind::kEngineLatency}) {
    auto parsed = ParseFaultKind(FaultKindName(kind));
    ASSERT_TRUE(parsed.ok()) << FaultKindName(kind);
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_EQ(ParseFaultKind("explode").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseFaultKind("").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FaultInjectorTest, ConcurrentNextNFiresExactlyN) {
  FaultInjector faults;
  FaultSpec spec = Spec(FaultKind::kFailBlit);
  spec.trigger = FaultTrigger::kNextN;
  spec.next_n = 100;
  ASSERT_TRUE(faults.Add(spec).ok());
  std::atomic<int> fired{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (faults.ShouldFailBlit("copy", "lmem")) fired.fetch_add(1);
        faults.List();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(fired.load(), 100);
  EXPECT_EQ(faults.FiredTotal(FaultKind::kFailBlit), 100u);
  EXPECT_TRUE(faults.List()[0].exhausted);
}

TEST(FaultInjectorTest, AddStampsTheCreationTimeAndListKeepsIt) {
  FaultInjector faults;
  const absl::Time before = absl::Now();
  absl::StatusOr<uint64_t> id = faults.Add(Spec(FaultKind::kBanMemcpy));
  const absl::Time after = absl::Now();
  ASSERT_TRUE(id.ok()) << id.status();
  std::vector<FaultInfo> listed = faults.List();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, *id);
  EXPECT_GE(listed[0].created, before);
  EXPECT_LE(listed[0].created, after);
  // Firing does not change it.
  ASSERT_TRUE(faults.MemcpyBanned("copy", "lmem"));
  EXPECT_EQ(faults.List()[0].created, listed[0].created);
}

TEST(FaultInjectorTest, AddRefusesPastTheListLimitUntilCleared) {
  FaultInjector faults;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(faults.Add(Spec(FaultKind::kFailBlit), 3).ok()) << i;
  }
  absl::StatusOr<uint64_t> fourth = faults.Add(Spec(FaultKind::kFailBlit), 3);
  EXPECT_EQ(fourth.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(faults.List().size(), 3u);  // nothing added
  EXPECT_EQ(faults.Clear(), 3u);
  EXPECT_TRUE(faults.Add(Spec(FaultKind::kFailBlit), 3).ok());
  EXPECT_TRUE(faults.Add(Spec(FaultKind::kFailBlit)).ok());  // 0: no limit
}

}  // namespace
}  // namespace gpumig
