#include "daemon/metrics/metrics.h"

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/base/mutex.h"
#include "daemon/metrics/scrape_for_test.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace daemon {
namespace {

using ::gpumig::daemon::metrics_test::HttpGet;
using ::gpumig::daemon::metrics_test::ParseSamples;
using ::gpumig::daemon::metrics_test::ParseTypes;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Key;
using ::testing::Not;

constexpr char kCreate[] = "/gpumig.v1.ObjectService/Create";

MetricsOptions Ephemeral() {
  MetricsOptions o;
  o.listen_address = "127.0.0.1:0";
  o.version = "gpumigd test";
  o.backend = "sim";
  return o;
}

// A snapshot source the test changes between scrapes.
class FakeSource {
 public:
  FakeSource() {
    RegionSnapshot lmem;
    lmem.name = "lmem";
    lmem.kind = "lmem";
    lmem.size_bytes = 1 << 20;
    lmem.aperture_bytes = 1 << 19;
    lmem.free_bytes = 1 << 20;
    RegionSnapshot smem = lmem;
    smem.name = "smem";
    smem.kind = "smem";
    smem.aperture_bytes = smem.size_bytes;
    snap_.regions = {lmem, smem};
    snap_.faults_fired = {{"fail_blit", 0}, {"wedge_engine", 0}};
  }

  Metrics::SnapshotSource Source() {
    return [this] {
      MutexLock lock(&mu_);
      return snap_;
    };
  }

  // Pretends an object of `bytes` moved smem -> lmem with one blit.
  void Migrate(uint64_t bytes) {
    MutexLock lock(&mu_);
    RegionSnapshot& lmem = snap_.regions[0];
    RegionSnapshot& smem = snap_.regions[1];
    ++lmem.blits;
    ++lmem.objects;
    lmem.allocated_bytes += bytes;
    lmem.free_bytes -= bytes;
    lmem.bytes_migrated_in += bytes;
    smem.bytes_migrated_out += bytes;
  }

  void Update(void (*f)(Snapshot*)) {
    MutexLock lock(&mu_);
    f(&snap_);
  }

 private:
  absl::Mutex mu_;
  Snapshot snap_ ABSL_GUARDED_BY(mu_);
};

std::map<std::string, double> Scrape(const Metrics& m) {
  absl::StatusOr<std::string> body = HttpGet(m.port());
  EXPECT_TRUE(body.ok()) << body.status();
  return body.ok() ? ParseSamples(*body) : std::map<std::string, double>{};
}

TEST(MetricsTest, ScrapeOverHttpSeesRegionCountersMoveAfterAMigration) {
  absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Create(Ephemeral());
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_GT((*m)->port(), 0);
  EXPECT_EQ((*m)->bound_address(), absl::StrCat("127.0.0.1:", (*m)->port()));
  FakeSource source;
  (*m)->SetSnapshotSource(source.Source());

  const std::string lmem = "{kind=\"lmem\",region=\"lmem\"}";
  const std::string smem = "{kind=\"smem\",region=\"smem\"}";
  std::map<std::string, double> before = Scrape(**m);
  EXPECT_EQ(before["gpumig_region_blits_total" + lmem], 0);
  EXPECT_EQ(before["gpumig_region_objects" + lmem], 0);
  EXPECT_EQ(before["gpumig_region_size_bytes" + lmem], 1 << 20);
  EXPECT_EQ(before["gpumig_region_aperture_bytes" + lmem], 1 << 19);

  source.Migrate(8192);
  std::map<std::string, double> after = Scrape(**m);
  EXPECT_EQ(after["gpumig_region_blits_total" + lmem], 1);
  EXPECT_EQ(after["gpumig_region_objects" + lmem], 1);
  EXPECT_EQ(after["gpumig_region_allocated_bytes" + lmem], 8192);
  EXPECT_EQ(after["gpumig_region_free_bytes" + lmem], (1 << 20) - 8192);
  EXPECT_EQ(after["gpumig_region_migrated_in_bytes_total" + lmem], 8192);
  EXPECT_EQ(after["gpumig_region_migrated_out_bytes_total" + smem], 8192);
  EXPECT_EQ(
      after["gpumig_build_info{backend=\"sim\",version=\"gpumigd test\"}"], 1);
  EXPECT_GT(after["gpumig_start_time_seconds"], 1.5e9);
}

TEST(MetricsTest, SnapshotGaugesAndFaultCountersAreExported) {
  absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Create(Ephemeral());
  ASSERT_TRUE(m.ok()) << m.status();
  FakeSource source;
  (*m)->SetSnapshotSource(source.Source());
  source.Update([](Snapshot* s) {
    s->objects = 3;
    s->object_bytes = 12288;
    s->unknown_state_objects = 1;
    s->fences_pending = 2;
    s->watchers = 4;
    s->engine_wedged = true;
    s->faults_fired[0].fired = 5;
    RegionSnapshot& lmem = s->regions[0];
    lmem.evictions = 6;
    lmem.blit_failures = 7;
    lmem.fallback_copies = 8;
    lmem.fallback_clears = 9;
    lmem.unknown_state_marks = 10;
    lmem.largest_free_block_bytes = 4096;
  });
  std::map<std::string, double> s = Scrape(**m);
  const std::string lmem = "{kind=\"lmem\",region=\"lmem\"}";
  EXPECT_EQ(s["gpumig_objects"], 3);
  EXPECT_EQ(s["gpumig_object_bytes"], 12288);
  EXPECT_EQ(s["gpumig_unknown_state_objects"], 1);
  EXPECT_EQ(s["gpumig_fences_pending"], 2);
  EXPECT_EQ(s["gpumig_watchers"], 4);
  EXPECT_EQ(s["gpumig_engine_wedged"], 1);
  EXPECT_EQ(s["gpumig_faults_fired_total{fault=\"fail_blit\"}"], 5);
  EXPECT_EQ(s["gpumig_faults_fired_total{fault=\"wedge_engine\"}"], 0);
  EXPECT_EQ(s["gpumig_region_evictions_total" + lmem], 6);
  EXPECT_EQ(s["gpumig_region_blit_failures_total" + lmem], 7);
  EXPECT_EQ(s["gpumig_region_fallback_copies_total" + lmem], 8);
  EXPECT_EQ(s["gpumig_region_fallback_clears_total" + lmem], 9);
  EXPECT_EQ(s["gpumig_region_unknown_state_marks_total" + lmem], 10);
  EXPECT_EQ(s["gpumig_region_largest_free_block_bytes" + lmem], 4096);
}

TEST(MetricsTest, RpcsAreCountedByMethodAndCode) {
  absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Create(Ephemeral());
  ASSERT_TRUE(m.ok()) << m.status();
  (*m)->OnRpc(kCreate, 0, absl::Microseconds(300));
  (*m)->OnRpc(kCreate, 0, absl::Milliseconds(2));
  (*m)->OnRpc(kCreate, 8, absl::Milliseconds(1));
  (*m)->OnRpc("/gpumig.v1.FenceService/Wait", 99, absl::Seconds(1));
  std::map<std::string, double> s = Scrape(**m);
  const std::string create = absl::StrCat("method=\"", kCreate, "\"");
  EXPECT_EQ(s["gpumig_rpcs_total{code=\"OK\"," + create + "}"], 2);
  EXPECT_EQ(s["gpumig_rpcs_total{code=\"RESOURCE_EXHAUSTED\"," + create + "}"],
            1);
  EXPECT_EQ(s["gpumig_rpcs_total{code=\"UNKNOWN\",method=\"/gpumig.v1."
              "FenceService/Wait\"}"],
            1);
  // Codes never seen make no series.
  EXPECT_THAT(s, Not(Contains(Key("gpumig_rpcs_total{code=\"NOT_FOUND\"," +
                                  create + "}"))));
  EXPECT_EQ(s["gpumig_rpc_duration_seconds_count{" + create + "}"], 3);
  EXPECT_EQ(
      s["gpumig_rpc_duration_seconds_bucket{" + create + ",le=\"0.0005\"}"], 1);
  EXPECT_EQ(
      s["gpumig_rpc_duration_seconds_bucket{" + create + ",le=\"0.001\"}"], 2);
  EXPECT_EQ(s["gpumig_rpc_duration_seconds_bucket{" + create + ",le=\"+Inf\"}"],
            3);
  EXPECT_DOUBLE_EQ(s["gpumig_rpc_duration_seconds_sum{" + create + "}"],
                   0.0033);
}

TEST(MetricsTest, FenceWaitHistogramIsCumulative) {
  absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Create(Ephemeral());
  ASSERT_TRUE(m.ok()) << m.status();
  std::map<std::string, double> s = Scrape(**m);
  EXPECT_EQ(s["gpumig_fence_wait_seconds_count"], 0);
  EXPECT_EQ(s["gpumig_fence_wait_seconds_bucket{le=\"+Inf\"}"], 0);

  (*m)->OnFenceWait(absl::Microseconds(50));
  (*m)->OnFenceWait(absl::Milliseconds(3));
  (*m)->OnFenceWait(absl::Seconds(2));
  (*m)->OnFenceWait(absl::Seconds(120));  // beyond the last bound
  (*m)->OnFenceWait(-absl::Seconds(1));   // clock step: counted as 0
  s = Scrape(**m);
  EXPECT_EQ(s["gpumig_fence_wait_seconds_bucket{le=\"0.0001\"}"], 2);
  EXPECT_EQ(s["gpumig_fence_wait_seconds_bucket{le=\"0.0025\"}"], 2);
  EXPECT_EQ(s["gpumig_fence_wait_seconds_bucket{le=\"0.005\"}"], 3);
  EXPECT_EQ(s["gpumig_fence_wait_seconds_bucket{le=\"2.5\"}"], 4);
  EXPECT_EQ(s["gpumig_fence_wait_seconds_bucket{le=\"60\"}"], 4);
  EXPECT_EQ(s["gpumig_fence_wait_seconds_bucket{le=\"+Inf\"}"], 5);
  EXPECT_EQ(s["gpumig_fence_wait_seconds_count"], 5);
  EXPECT_NEAR(s["gpumig_fence_wait_seconds_sum"], 122.00305, 1e-9);
}

TEST(MetricsTest, NamesFollowPrometheusConventions) {
  absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Create(Ephemeral());
  ASSERT_TRUE(m.ok()) << m.status();
  FakeSource source;
  (*m)->SetSnapshotSource(source.Source());
  (*m)->OnRpc(kCreate, 0, absl::Milliseconds(1));
  const std::string body = (*m)->Render();
  const std::map<std::string, std::string> types = ParseTypes(body);
  ASSERT_GE(types.size(), 26u) << body;
  for (const auto& [name, type] : types) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(absl::StartsWith(name, "gpumig_"));
    EXPECT_THAT(body, HasSubstr("# HELP " + name + " "));
    if (type == "counter") {
      EXPECT_TRUE(absl::EndsWith(name, "_total"));
    } else {
      EXPECT_FALSE(absl::EndsWith(name, "_total"));
    }
    if (type == "histogram") {
      EXPECT_TRUE(absl::EndsWith(name, "_seconds"));
    }
    if (absl::StrContains(name, "bytes") && type == "gauge") {
      EXPECT_TRUE(absl::EndsWith(name, "_bytes"));
    }
  }
  EXPECT_EQ(types.at("gpumig_rpcs_total"), "counter");
  EXPECT_EQ(types.at("gpumig_region_blit_failures_total"), "counter");
  EXPECT_EQ(types.at("gpumig_unknown_state_objects"), "gauge");
  EXPECT_EQ(types.at("gpumig_fence_wait_seconds"), "histogram");
  // What HTTP serves is what Render() renders (plus prometheus-cpp's own
  // exposer_* self-metrics).
  absl::StatusOr<std::string> http = HttpGet((*m)->port());
  ASSERT_TRUE(http.ok()) << http.status();
  for (const auto& [name, type] : types) {
    EXPECT_THAT(*http, HasSubstr("# TYPE " + name + " " + type));
  }
}

TEST(MetricsTest, MethodLabelsAreBounded) {
  absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Create(Ephemeral());
  ASSERT_TRUE(m.ok()) << m.status();
  for (int i = 0; i < 3 * kMaxRpcMethods; ++i) {
    (*m)->OnRpc(absl::StrCat("/x.Service/M", i), 0, absl::ZeroDuration());
  }
  (*m)->OnRpc("", 0, absl::ZeroDuration());
  std::map<std::string, double> s = ParseSamples((*m)->Render());
  int series = 0;
  for (const auto& [key, value] : s) {
    if (absl::StartsWith(key, "gpumig_rpcs_total{")) ++series;
  }
  EXPECT_EQ(series, kMaxRpcMethods);
  EXPECT_EQ(s["gpumig_rpcs_total{code=\"OK\",method=\"other\"}"],
            3 * kMaxRpcMethods - (kMaxRpcMethods - 1) + 1);
}

TEST(MetricsTest, ClearingTheSourceDropsSnapshotSeries) {
  absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Create(Ephemeral());
  ASSERT_TRUE(m.ok()) << m.status();
  FakeSource source;
  (*m)->SetSnapshotSource(source.Source());
  EXPECT_THAT((*m)->Render(), HasSubstr("gpumig_region_blits_total{"));
  (*m)->SetSnapshotSource(nullptr);
  const std::string body = (*m)->Render();
  EXPECT_THAT(body, Not(HasSubstr("gpumig_region_")));
  EXPECT_THAT(body, Not(HasSubstr("gpumig_objects")));
  EXPECT_THAT(body, HasSubstr("gpumig_rpcs_total"));
}

TEST(MetricsTest, EmptyAddressServesNothingButRenders) {
  MetricsOptions o = Ephemeral();
  o.listen_address = "";
  absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Create(o);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->port(), 0);
  EXPECT_EQ((*m)->bound_address(), "");
  (*m)->OnFenceWait(absl::Milliseconds(1));
  EXPECT_THAT((*m)->Render(), HasSubstr("gpumig_fence_wait_seconds_count 1"));
}

TEST(MetricsTest, RejectsMalformedAddresses) {
  for (const char* address :
       {"9464", ":9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
        "127.0.0.1:-1", "127.0.0.1:94x", "example.com:9464", "[::1:9464",
        "[zz]:9464", "1.2.3:9464"}) {
    SCOPED_TRACE(address);
    MetricsOptions o = Ephemeral();
    o.listen_address = address;
    EXPECT_EQ(Metrics::Create(o).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  MetricsOptions o = Ephemeral();
  o.http_threads = 0;
  EXPECT_EQ(Metrics::Create(o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MetricsTest, LocalhostMeansLoopback) {
  MetricsOptions o = Ephemeral();
  o.listen_address = "localhost:0";
  absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Create(o);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->bound_address(), absl::StrCat("127.0.0.1:", (*m)->port()));
  EXPECT_TRUE(HttpGet((*m)->port()).ok());
}

TEST(MetricsTest, PortInUseIsUnavailable) {
  absl::StatusOr<std::unique_ptr<Metrics>> first = Metrics::Create(Ephemeral());
  ASSERT_TRUE(first.ok()) << first.status();
  MetricsOptions o = Ephemeral();
  o.listen_address = absl::StrCat("127.0.0.1:", (*first)->port());
  absl::StatusOr<std::unique_ptr<Metrics>> second = Metrics::Create(o);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable)
      << second.status();
  EXPECT_TRUE(HttpGet((*first)->port()).ok());
}

TEST(MetricsTest, StopClosesTheEndpointAndKeepsCounting) {
  absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Create(Ephemeral());
  ASSERT_TRUE(m.ok()) << m.status();
  const int port = (*m)->port();
  ASSERT_TRUE(HttpGet(port).ok());
  (*m)->Stop();
  (*m)->Stop();  // idempotent
  EXPECT_EQ(HttpGet(port).status().code(), absl::StatusCode::kUnavailable);
  (*m)->OnRpc(kCreate, 0, absl::ZeroDuration());
  EXPECT_THAT((*m)->Render(), HasSubstr("gpumig_rpcs_total{code=\"OK\""));
}

TEST(MetricsTest, ConcurrentEventsAndScrapesLoseNothing) {
  absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Create(Ephemeral());
  ASSERT_TRUE(m.ok()) << m.status();
  FakeSource source;
  (*m)->SetSnapshotSource(source.Source());
  constexpr int kThreads = 4;
  constexpr int kEach = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        (*m)->OnRpc(kCreate, t % 2 == 0 ? 0 : 5, absl::Microseconds(i));
        (*m)->OnFenceWait(absl::Microseconds(i));
        if (i % 500 == 0) source.Migrate(4096);
      }
    });
  }
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(HttpGet((*m)->port()).ok());
  // Swapping the source while scrapes may run.
  (*m)->SetSnapshotSource(source.Source());
  for (std::thread& t : threads) t.join();
  std::map<std::string, double> s = Scrape(**m);
  const std::string create = absl::StrCat("method=\"", kCreate, "\"");
  EXPECT_EQ(s["gpumig_rpcs_total{code=\"OK\"," + create + "}"],
            kThreads / 2 * kEach);
  EXPECT_EQ(s["gpumig_rpcs_total{code=\"NOT_FOUND\"," + create + "}"],
            kThreads / 2 * kEach);
  EXPECT_EQ(s["gpumig_fence_wait_seconds_count"], kThreads * kEach);
  EXPECT_EQ(s["gpumig_region_blits_total{kind=\"lmem\",region=\"lmem\"}"],
            kThreads * kEach / 500);
}

TEST(GrpcCodeNameTest, NamesEveryCode) {
  EXPECT_EQ(GrpcCodeName(0), "OK");
  EXPECT_EQ(GrpcCodeName(4), "DEADLINE_EXCEEDED");
  EXPECT_EQ(GrpcCodeName(15), "DATA_LOSS");
  EXPECT_EQ(GrpcCodeName(16), "UNAUTHENTICATED");
  EXPECT_EQ(GrpcCodeName(17), "UNKNOWN");
  EXPECT_EQ(GrpcCodeName(-1), "UNKNOWN");
}

}  // namespace
}  // namespace daemon
}  // namespace gpumig
