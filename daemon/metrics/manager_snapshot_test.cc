// Metrics over a real MemoryManager (sim backend): a migration, a failed
// blit with its CPU fallback, and an unknown-state mark each move what an
// HTTP scrape returns.
#include "daemon/metrics/manager_snapshot.h"

#include <map>
#include <memory>
#include <string>

#include "core/manager/memory_manager.h"
#include "core/manager/test_util.h"
#include "daemon/metrics/metrics.h"
#include "daemon/metrics/scrape_for_test.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace daemon {
namespace {

using ::gpumig::testing::MakeSimManager;
using ::gpumig::testing::Soon;
using ::gpumig::testing::User;

constexpr char kLmem[] = "{kind=\"lmem\",region=\"lmem\"}";
constexpr char kSmem[] = "{kind=\"smem\",region=\"smem\"}";
constexpr uint64_t kSize = 64 << 10;

class ManagerSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<MemoryManager>> mm = MakeSimManager();
    ASSERT_TRUE(mm.ok()) << mm.status();
    mm_ = *std::move(mm);
    MetricsOptions options;
    options.listen_address = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<Metrics>> m = Metrics::Create(options);
    ASSERT_TRUE(m.ok()) << m.status();
    metrics_ = *std::move(m);
    metrics_->SetSnapshotSource([mm = mm_.get()] { return TakeSnapshot(*mm); });
  }
  void TearDown() override {
    // What the daemon must do too: no scrape may reach a destroyed manager.
    if (metrics_ != nullptr) metrics_->SetSnapshotSource(nullptr);
  }

  std::map<std::string, double> Scrape() {
    absl::StatusOr<std::string> body = metrics_test::HttpGet(metrics_->port());
    EXPECT_TRUE(body.ok()) << body.status();
    return body.ok() ? metrics_test::ParseSamples(*body)
                     : std::map<std::string, double>{};
  }

  // An object of kSize in smem whose clear has signalled.
  uint64_t CreateInSmem() {
    MemoryManager::CreateRequest req;
    req.size = kSize;
    req.placements = {"smem", "lmem"};
    req.require_cpu_access = true;  // so a failed blit can fall back
    absl::StatusOr<MemoryManager::CreateResult> r =
        mm_->CreateObject(User(1000), req);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return 0;
    EXPECT_TRUE(mm_->WaitFence(User(1000), r->fence_id, Soon()).ok());
    return r->object_id;
  }

  FenceInfo MigrateAndWait(uint64_t id, const char* region) {
    absl::StatusOr<uint64_t> fence = mm_->Migrate(User(1000), id, region);
    EXPECT_TRUE(fence.ok()) << fence.status();
    if (!fence.ok()) return {};
    absl::StatusOr<FenceInfo> info = mm_->WaitFence(User(1000), *fence, Soon());
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : FenceInfo{};
  }

  std::unique_ptr<MemoryManager> mm_;
  std::unique_ptr<Metrics> metrics_;  // destroyed first
};

TEST_F(ManagerSnapshotTest, AMigrationMovesTheRegionCounters) {
  const uint64_t id = CreateInSmem();
  std::map<std::string, double> before = Scrape();
  EXPECT_EQ(before[std::string("gpumig_region_objects") + kSmem], 1);
  EXPECT_EQ(before[std::string("gpumig_region_objects") + kLmem], 0);
  EXPECT_EQ(before[std::string("gpumig_region_size_bytes") + kLmem], 4 << 20);
  EXPECT_EQ(before["gpumig_objects"], 1);
  EXPECT_EQ(before["gpumig_object_bytes"], kSize);

  EXPECT_EQ(MigrateAndWait(id, "lmem").outcome, MoveOutcome::kBlitOk);
  std::map<std::string, double> after = Scrape();
  EXPECT_GT(after[std::string("gpumig_region_blits_total") + kLmem],
            before[std::string("gpumig_region_blits_total") + kLmem]);
  EXPECT_EQ(after[std::string("gpumig_region_migrated_in_bytes_total") + kLmem],
            kSize);
  EXPECT_EQ(
      after[std::string("gpumig_region_migrated_out_bytes_total") + kSmem],
      kSize);
  EXPECT_EQ(after[std::string("gpumig_region_objects") + kLmem], 1);
  EXPECT_EQ(after[std::string("gpumig_region_objects") + kSmem], 0);
  EXPECT_GE(after[std::string("gpumig_region_allocated_bytes") + kLmem], kSize);
  EXPECT_EQ(after[std::string("gpumig_region_blit_failures_total") + kLmem], 0);
}

TEST_F(ManagerSnapshotTest, AFailedBlitCountsTheFaultAndTheFallback) {
  const uint64_t id = CreateInSmem();
  FaultSpec fail;
  fail.kind = FaultKind::kFailBlit;
  fail.trigger = FaultTrigger::kNextN;
  fail.next_n = 1;
  ASSERT_TRUE(mm_->faults().Add(fail).ok());
  std::map<std::string, double> before = Scrape();
  EXPECT_EQ(before["gpumig_faults_fired_total{fault=\"fail_blit\"}"], 0);
  EXPECT_EQ(before["gpumig_faults_fired_total{fault=\"ban_memcpy\"}"], 0);

  // Both sides CPU-visible: the failsafe copies by CPU.
  EXPECT_EQ(MigrateAndWait(id, "lmem").outcome, MoveOutcome::kFallbackCopy);
  std::map<std::string, double> after = Scrape();
  EXPECT_EQ(after["gpumig_faults_fired_total{fault=\"fail_blit\"}"], 1);
  EXPECT_EQ(after[std::string("gpumig_region_blit_failures_total") + kLmem], 1);
  EXPECT_EQ(after[std::string("gpumig_region_fallback_copies_total") + kLmem],
            1);
  EXPECT_EQ(after["gpumig_unknown_state_objects"], 0);
}

TEST_F(ManagerSnapshotTest, NoFallbackMarksUnknownStateAndTheGaugeSaysSo) {
  const uint64_t id = CreateInSmem();
  FaultSpec fail;
  fail.kind = FaultKind::kFailBlit;
  fail.trigger = FaultTrigger::kNextN;
  fail.next_n = 1;
  ASSERT_TRUE(mm_->faults().Add(fail).ok());
  FaultSpec ban;
  ban.kind = FaultKind::kBanMemcpy;
  ASSERT_TRUE(mm_->faults().Add(ban).ok());

  EXPECT_EQ(MigrateAndWait(id, "lmem").outcome, MoveOutcome::kUnknownState);
  std::map<std::string, double> after = Scrape();
  EXPECT_EQ(after["gpumig_unknown_state_objects"], 1);
  EXPECT_EQ(
      after[std::string("gpumig_region_unknown_state_marks_total") + kLmem] +
          after[std::string("gpumig_region_unknown_state_marks_total") + kSmem],
      1);
  EXPECT_EQ(after["gpumig_faults_fired_total{fault=\"ban_memcpy\"}"], 1);

  // Destroying the object clears the gauge; the mark counter stays.
  ASSERT_TRUE(mm_->DestroyObject(User(1000), id).ok());
  std::map<std::string, double> later = Scrape();
  EXPECT_EQ(later["gpumig_unknown_state_objects"], 0);
  EXPECT_EQ(
      later[std::string("gpumig_region_unknown_state_marks_total") + kLmem] +
          later[std::string("gpumig_region_unknown_state_marks_total") + kSmem],
      1);
}

TEST_F(ManagerSnapshotTest, EveryFaultKindHasASeriesFromTheStart) {
  std::map<std::string, double> s = Scrape();
  for (const char* kind : {"fail_blit", "fail_clear", "fail_work_allocation",
                           "ban_memcpy", "wedge_engine", "engine_latency"}) {
    EXPECT_EQ(s.count(std::string("gpumig_faults_fired_total{fault=\"") + kind +
                      "\"}"),
              1u)
        << kind;
  }
  EXPECT_EQ(s["gpumig_engine_wedged"], 0);
}

}  // namespace
}  // namespace daemon
}  // namespace gpumig
