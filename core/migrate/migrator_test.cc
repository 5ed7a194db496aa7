// Migrator on its own (no MemoryManager): each failsafe outcome of a clear,
// a migration and an eviction, checked by content and by what the fence and
// the object say, with faults injected on a SimDevice. LMEM here has a
// 1 MiB CPU aperture; objects placed beyond it have no CPU fallback.
#include "core/migrate/migrator.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/base/mutex.h"
#include "core/device/sim_device.h"
#include "core/fault/fault_injector.h"
#include "core/fence/work_queue.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kObj = 64 << 10;

std::vector<uint8_t> Pattern(uint64_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (uint64_t i = 0; i < n; ++i)
    v[i] = static_cast<uint8_t>(i * 7 + seed) | 1;
  return v;
}

class MigratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SimDeviceConfig config;
    config.regions.push_back(
        RegionConfig{"lmem", RegionKind::kLmem, 4 * kMiB, kMiB, 4096});
    config.regions.push_back(
        RegionConfig{"smem", RegionKind::kSmem, 4 * kMiB, 4 * kMiB, 4096});
    auto device = SimDevice::Create(std::move(config), &faults_);
    ASSERT_TRUE(device.ok()) << device.status();
    device_ = *std::move(device);
    lmem_ = *device_->FindRegion("lmem");
    smem_ = *device_->FindRegion("smem");
    queue_ = std::make_unique<WorkQueue>("failsafe-test", 2);
    migrator_ =
        std::make_unique<Migrator>(device_.get(), &faults_, queue_.get());
  }
  void TearDown() override {
    objects_.clear();
    filler_.reset();
    device_->Shutdown();
    queue_->Shutdown();
    for (Region* r : {lmem_, smem_}) {
      EXPECT_TRUE(r->CheckInvariantsForTest().ok());
      EXPECT_EQ(r->Usage().allocated_bytes, 0u) << r->name();
    }
  }

  // A table in `r`: inside the aperture (`cpu`), or beyond it (LMEM: the
  // first MiB is taken by a filler first, so the table lands past it).
  SgTableRef Table(Region* r, bool cpu) {
    if (r == lmem_ && !cpu && filler_ == nullptr) {
      filler_ = *lmem_->Allocate(kMiB, /*require_cpu_access=*/true);
    }
    auto t = r->Allocate(kObj, cpu);
    EXPECT_TRUE(t.ok()) << t.status();
    if (t.ok()) {
      EXPECT_EQ((*t)->cpu_accessible(), cpu || r == smem_);
    }
    return t.ok() ? *t : nullptr;
  }
  BufferObjectRef Object() {
    auto obj = std::make_shared<BufferObject>(
        objects_.size() + 1, kObj, std::vector<Region*>{smem_, lmem_},
        Principal{1000, "uid:1000", false}, "", false);
    objects_.push_back(obj);
    return obj;
  }
  // Reads the whole object through the engine (works for every placement).
  std::vector<uint8_t> Content(const BufferObject& obj) {
    std::vector<uint8_t> out(kObj, 0xAA);
    FenceRef f =
        device_->engine().ReadToHost(obj.sg(), 0, kObj, out.data(), {});
    f->Wait();
    EXPECT_TRUE(f->error().ok()) << f->error();
    return out;
  }
  void Put(const BufferObject& obj, const std::vector<uint8_t>& data) {
    FenceRef f =
        device_->engine().WriteFromHost(data.data(), obj.sg(), 0, kObj, {});
    f->Wait();
    ASSERT_TRUE(f->error().ok()) << f->error();
  }
  // Clears `obj` into a fresh table of `r` and waits for the failsafe.
  void Place(const BufferObjectRef& obj, Region* r, bool cpu) {
    auto res = migrator_->Clear(obj, Table(r, cpu));
    ASSERT_TRUE(res.ok()) << res.status();
    res->fence->Wait();
    ASSERT_TRUE(res->fence->error().ok()) << res->fence->error();
  }
  absl::StatusOr<Migrator::Result> MigrateTo(const BufferObjectRef& obj,
                                             Region* r, bool cpu) {
    MutexLock io(obj->io_mu());  // As the MemoryManager holds it.
    return migrator_->Migrate(obj, Table(r, cpu));
  }
  void Inject(FaultKind kind) {
    FaultSpec spec;
    spec.kind = kind;
    ASSERT_TRUE(faults_.Add(spec).ok());
  }

  FaultInjector faults_;
  std::unique_ptr<SimDevice> device_;
  Region* lmem_ = nullptr;
  Region* smem_ = nullptr;
  std::unique_ptr<WorkQueue> queue_;
  std::unique_ptr<Migrator> migrator_;
  SgTableRef filler_;
  std::vector<BufferObjectRef> objects_;
};

TEST_F(MigratorTest, ClearInstallsAZeroedTableWhoseFenceIsTheMoveFence) {
  // The blocks held another owner's bytes before.
  {
    SgTableRef old = Table(smem_, true);
    std::vector<uint8_t> dirty(kObj, 0x5A);
    device_->engine().WriteFromHost(dirty.data(), old, 0, kObj, {})->Wait();
  }
  BufferObjectRef obj = Object();
  auto res = migrator_->Clear(obj, Table(smem_, true));
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(obj->move_fence(), res->fence);
  res->fence->Wait();
  EXPECT_TRUE(res->fence->error().ok());
  EXPECT_EQ(res->record->outcome.load(), MoveOutcome::kBlitOk);
  EXPECT_EQ(res->record->kind, MoveKind::kClear);
  EXPECT_EQ(obj->region(), smem_);
  EXPECT_EQ(Content(*obj), std::vector<uint8_t>(kObj, 0));
}

TEST_F(MigratorTest, MigrateCopiesContentAndDropsTheSourceWhenDone) {
  BufferObjectRef obj = Object();
  Place(obj, smem_, true);
  const auto data = Pattern(kObj, 3);
  Put(*obj, data);
  auto res = MigrateTo(obj, lmem_, false);
  ASSERT_TRUE(res.ok()) << res.status();
  res->fence->Wait();
  EXPECT_EQ(res->record->outcome.load(), MoveOutcome::kBlitOk);
  EXPECT_EQ(res->record->src_region, "smem");
  EXPECT_EQ(res->record->dst_region, "lmem");
  EXPECT_EQ(obj->region(), lmem_);
  EXPECT_EQ(Content(*obj), data);
  // The work dropped the source table after signalling its fence; it
  // drains with the queue (TearDown checks every block came back).
}

TEST_F(MigratorTest, FailedBlitFallsBackToMemcpyAndSignalsClean) {
  BufferObjectRef obj = Object();
  Place(obj, smem_, true);
  const auto data = Pattern(kObj, 9);
  Put(*obj, data);
  Inject(FaultKind::kFailBlit);
  auto res = MigrateTo(obj, lmem_, /*cpu=*/true);
  ASSERT_TRUE(res.ok()) << res.status();
  res->fence->Wait();
  EXPECT_TRUE(res->fence->error().ok()) << res->fence->error();
  EXPECT_EQ(res->record->outcome.load(), MoveOutcome::kFallbackCopy);
  EXPECT_FALSE(res->record->engine_error.ok());  // the blit's own failure
  EXPECT_FALSE(obj->unknown());
  EXPECT_EQ(Content(*obj), data);  // the fallback, not the blit's clear
  EXPECT_EQ(lmem_->counters().fallback_copies.load(), 1u);
}

TEST_F(MigratorTest, NoFallbackMarksUnknownBeforeTheFenceSignals) {
  BufferObjectRef obj = Object();
  Place(obj, smem_, true);
  Put(*obj, Pattern(kObj, 1));
  Inject(FaultKind::kFailBlit);
  Inject(FaultKind::kBanMemcpy);
  auto res = MigrateTo(obj, lmem_, /*cpu=*/false);
  ASSERT_TRUE(res.ok()) << res.status();
  // A callback runs at the signal: the flag must already be set then. (It
  // runs after Wait() may return, so it reports through a fence of its own.)
  std::atomic<int> seen{-1};
  FenceRef reported = Fence::Create("reported");
  absl::Status added =
      res->fence->AddCallback([obj, &seen, reported](const Fence&) {
        seen = obj->unknown() ? 1 : 0;
        reported->Signal().IgnoreError();
      });
  if (added.ok()) {
    reported->Wait();
    EXPECT_EQ(seen.load(), 1);
  }
  res->fence->Wait();
  EXPECT_TRUE(obj->unknown());
  EXPECT_EQ(res->fence->error().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(res->record->outcome.load(), MoveOutcome::kUnknownState);
  EXPECT_EQ(obj->CheckAccess().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(obj->unknown_fence_id(), res->fence->id());
}

TEST_F(MigratorTest, WorkAllocationFailureFallsBackSynchronously) {
  BufferObjectRef obj = Object();
  Place(obj, smem_, true);
  const auto data = Pattern(kObj, 4);
  Put(*obj, data);
  Inject(FaultKind::kFailWorkAllocation);
  Inject(FaultKind::kFailBlit);
  auto res = MigrateTo(obj, lmem_, /*cpu=*/true);
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_TRUE(res->record->synchronous.load());
  EXPECT_TRUE(res->fence->IsSignaled());  // done before Migrate returned
  EXPECT_TRUE(res->fence->error().ok());
  EXPECT_FALSE(obj->unknown());  // never marked unknown on this path
  EXPECT_EQ(Content(*obj), data);
}

TEST_F(MigratorTest, SynchronousFailureIsAbortedAndKeepsTheOldPlacement) {
  BufferObjectRef obj = Object();
  Place(obj, smem_, true);
  const auto data = Pattern(kObj, 5);
  Put(*obj, data);
  const FenceRef before = obj->move_fence();
  const SgTableRef old = obj->sg();
  Inject(FaultKind::kFailWorkAllocation);
  Inject(FaultKind::kFailBlit);
  Inject(FaultKind::kBanMemcpy);
  auto res = MigrateTo(obj, lmem_, /*cpu=*/true);
  EXPECT_EQ(res.status().code(), absl::StatusCode::kAborted) << res.status();
  EXPECT_EQ(obj->sg(), old);
  EXPECT_EQ(obj->move_fence(), before);
  EXPECT_FALSE(obj->unknown());
  faults_.Clear();
  EXPECT_EQ(Content(*obj), data);
}

TEST_F(MigratorTest, MigrateOrEvictWithoutPlacementIsFailedPrecondition) {
  BufferObjectRef obj = Object();
  EXPECT_EQ(MigrateTo(obj, lmem_, true).status().code(),
            absl::StatusCode::kFailedPrecondition);
  MutexLock io(obj->io_mu());
  EXPECT_EQ(migrator_->Evict(obj, Table(smem_, true)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(MigratorTest, EvictionReleasesSourceBlocksAtOnceOnTheRegionTimeline) {
  BufferObjectRef obj = Object();
  Place(obj, lmem_, true);
  const auto data = Pattern(kObj, 6);
  Put(*obj, data);
  const uint64_t used = lmem_->Usage().allocated_bytes;
  const uint64_t seqno = lmem_->eviction_timeline().last_seqno();
  absl::StatusOr<Migrator::EvictResult> res;
  {
    MutexLock io(obj->io_mu());
    res = migrator_->Evict(obj, Table(smem_, true));
  }
  ASSERT_TRUE(res.ok()) << res.status();
  // Pipelined: the LMEM blocks are free before the eviction blit is known
  // to be done; the next placement there must await the timeline fence.
  EXPECT_EQ(lmem_->Usage().allocated_bytes, used - kObj);
  EXPECT_EQ(lmem_->eviction_timeline().last_seqno(), seqno + 1);
  EXPECT_EQ(lmem_->eviction_timeline().last_fence(), res->eviction_fence);
  res->eviction_fence->Wait();
  res->move.fence->Wait();
  EXPECT_EQ(res->move.record->kind, MoveKind::kEvict);
  EXPECT_EQ(obj->region(), smem_);
  EXPECT_EQ(Content(*obj), data);
}

TEST_F(MigratorTest, ANewOwnersClearOfEvictedBlocksIsGuardedToo) {
  // Scenario (a) of the failsafe: the eviction blit fails with no fallback,
  // and the clear of the freed blocks for the next owner is skipped by the
  // engine; its failsafe must memset, or the new owner reads old bytes.
  BufferObjectRef victim = Object();
  Place(victim, lmem_, true);
  Put(*victim, Pattern(kObj, 8));
  Inject(FaultKind::kFailBlit);
  Inject(FaultKind::kBanMemcpy);
  {
    MutexLock io(victim->io_mu());
    auto ev = migrator_->Evict(victim, Table(smem_, true));
    ASSERT_TRUE(ev.ok()) << ev.status();
  }
  faults_.Clear();
  BufferObjectRef next = Object();
  auto res = migrator_->Clear(next, Table(lmem_, true));
  ASSERT_TRUE(res.ok()) << res.status();
  res->fence->Wait();
  EXPECT_TRUE(res->fence->error().ok()) << res->fence->error();
  EXPECT_FALSE(next->unknown());
  EXPECT_EQ(Content(*next), std::vector<uint8_t>(kObj, 0));
}

}  // namespace
}  // namespace gpumig
