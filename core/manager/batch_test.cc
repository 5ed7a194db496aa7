// MemoryManager batches: whole-request validation, independent entries in
// request order, and the registered fence array.
#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "core/manager/memory_manager.h"
#include "core/manager/test_util.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

using testing::MakeSimManager;
using testing::Soon;
using testing::User;

class BatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = MakeSimManager();
    ASSERT_TRUE(m.ok()) << m.status();
    mm_ = *std::move(m);
  }
  uint64_t Create(uint64_t size, const Principal& who = User(1000)) {
    MemoryManager::CreateRequest req;
    req.size = size;
    req.placements = {"smem", "lmem"};
    auto r = mm_->CreateObject(who, req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->object_id : 0;
  }
  std::vector<MemoryManager::MigrateEntry> To(const std::vector<uint64_t>& ids,
                                              const std::string& region) {
    std::vector<MemoryManager::MigrateEntry> v;
    for (uint64_t id : ids) v.push_back({id, region});
    return v;
  }
  std::string RegionOf(uint64_t id) {
    auto info = mm_->GetObject(User(1000), id);
    return info.ok() ? info->region : "?";
  }
  std::unique_ptr<MemoryManager> mm_;
};

TEST_F(BatchTest, MigrateBatchMovesEveryEntryAndArraySignalsAfterAll) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(Create(4096));
  auto r = mm_->MigrateBatch(User(1000), To(ids, "lmem"));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->entries.size(), 8u);
  auto array = mm_->WaitFence(User(1000), r->array_fence_id, Soon());
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_EQ(array->kind, FenceKind::kArray);
  EXPECT_TRUE(array->signaled);
  EXPECT_TRUE(array->error.ok());
  ASSERT_NE(array->array, nullptr);
  FenceArrayCounts c = array->array->counts();
  EXPECT_EQ(c.members, 8u);
  EXPECT_EQ(c.blit_ok, 8u);
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_TRUE(r->entries[i].status.ok()) << i;
    EXPECT_EQ(r->entries[i].object_id, ids[i]);
    auto f = mm_->GetFence(User(1000), r->entries[i].fence_id);
    ASSERT_TRUE(f.ok());
    EXPECT_TRUE(f->signaled);  // every member before the array
    EXPECT_EQ(RegionOf(ids[i]), "lmem");
  }
}

TEST_F(BatchTest, MalformedBatchesAreRefusedWholeNamingTheEntry) {
  const uint64_t a = Create(4096), b = Create(4096);
  auto zero = mm_->MigrateBatch(User(1000), {});
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<uint64_t> many(MemoryManager::kMaxBatchEntries + 1, a);
  auto over = mm_->MigrateBatch(User(1000), To(many, "lmem"));
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(over.status().message().find("4096"), std::string::npos);
  auto dup = mm_->MigrateBatch(User(1000), To({a, b, a}, "lmem"));
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(dup.status().message().find("entries[2]"), std::string::npos)
      << dup.status();
  auto region = mm_->MigrateBatch(User(1000), {{a, "lmem"}, {b, "nope"}});
  EXPECT_EQ(region.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(region.status().message().find("entries[1].region"),
            std::string::npos);
  // Nothing moved.
  EXPECT_EQ(RegionOf(a), "smem");
  EXPECT_EQ(RegionOf(b), "smem");
  std::vector<MemoryManager::CreateRequest> creates(3);
  for (auto& c : creates) c.size = 4096;
  creates[2].size = 0;
  auto bad = mm_->CreateBatch(User(1000), creates);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("entries[2].size_bytes"),
            std::string::npos);
  EXPECT_EQ(mm_->ListObjects(User(1000), false).size(),
            2u);  // the bad CreateBatch created nothing
  EXPECT_EQ(mm_->DestroyBatch(User(1000), {a, a}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mm_->DestroyBatch(User(1000), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(BatchTest, OtherPrincipalsEntryIsDeniedAndTheRestProceed) {
  const uint64_t mine1 = Create(4096);
  const uint64_t theirs = Create(4096, User(2000));
  const uint64_t mine2 = Create(4096);
  auto r = mm_->MigrateBatch(User(1000), To({mine1, theirs, mine2}, "lmem"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->entries[0].status.ok());
  EXPECT_EQ(r->entries[1].status,
            absl::PermissionDeniedError("permission denied"));
  EXPECT_EQ(r->entries[1].fence_id, 0u);
  EXPECT_TRUE(r->entries[2].status.ok());
  ASSERT_TRUE(mm_->WaitFence(User(1000), r->array_fence_id, Soon()).ok());
  EXPECT_EQ(r->array->counts().members, 2u);
  EXPECT_EQ(RegionOf(mine2), "lmem");
  auto other = mm_->GetObject(User(2000), theirs);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->region, "smem");
}

TEST_F(BatchTest, ArrayCarriesMemberErrorAndCountsUnknownState) {
  const uint64_t a = Create(4096), b = Create(4096);
  ASSERT_TRUE(mm_->faults().Add({FaultKind::kFailBlit}).ok());
  ASSERT_TRUE(mm_->faults().Add({FaultKind::kBanMemcpy}).ok());
  auto r = mm_->MigrateBatch(User(1000), To({a, b}, "lmem"));
  ASSERT_TRUE(r.ok()) << r.status();
  auto array = mm_->WaitFence(User(1000), r->array_fence_id, Soon());
  ASSERT_TRUE(array.ok());
  EXPECT_EQ(array->error.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(array->array->counts().unknown_state, 2u);
  mm_->faults().Clear();
  // An unknown-state object in a later batch fails alone.
  const uint64_t c = Create(4096);
  auto again = mm_->MigrateBatch(User(1000), To({a, c}, "lmem"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->entries[0].status.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(again->entries[1].status.ok());
  auto f = mm_->WaitFence(User(1000), again->array_fence_id, Soon());
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->error.ok());
}

TEST_F(BatchTest, BatchLargerThanTheRegionFailsPerEntryAndLeaksNothing) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(Create(1 << 20));  // lmem: 4 MiB
  auto r = mm_->MigrateBatch(User(1000), To(ids, "lmem"));
  ASSERT_TRUE(r.ok()) << r.status();
  for (const auto& e : r->entries) {
    EXPECT_TRUE(e.status.ok() || absl::IsResourceExhausted(e.status))
        << e.status;
  }
  ASSERT_TRUE(mm_->WaitFence(User(1000), r->array_fence_id, Soon()).ok());
  auto d = mm_->DestroyBatch(User(1000), ids);
  ASSERT_TRUE(d.ok());
  for (const auto& e : d->entries) EXPECT_TRUE(e.status.ok()) << e.status;
  EXPECT_TRUE(mm_->CheckInvariantsForTest().ok());
}

TEST_F(BatchTest, CreateBatchThenDestroyBatch) {
  std::vector<MemoryManager::CreateRequest> creates(16);
  for (auto& c : creates) {
    c.size = 8192;
    c.placements = {"lmem"};
  }
  auto r = mm_->CreateBatch(User(1000), creates);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(mm_->WaitFence(User(1000), r->array_fence_id, Soon()).ok());
  EXPECT_EQ(r->array->counts().blit_ok, 16u);
  std::vector<uint64_t> ids;
  for (const auto& e : r->entries) {
    ASSERT_TRUE(e.status.ok()) << e.status;
    ids.push_back(e.object_id);
    std::vector<uint8_t> out(8192, 0xAA);
    ASSERT_TRUE(
        mm_->Read(User(1000), e.object_id, 0, absl::MakeSpan(out), Soon())
            .ok());
    EXPECT_EQ(out, std::vector<uint8_t>(8192, 0));
  }
  auto d = mm_->DestroyBatch(User(1000), ids);
  ASSERT_TRUE(d.ok());
  for (const auto& e : d->entries) EXPECT_TRUE(e.status.ok());
  auto again = mm_->DestroyBatch(User(1000), {ids[0]});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->entries[0].status.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(mm_->CheckInvariantsForTest().ok());
}

TEST_F(BatchTest, BatchRacingDestroyOfItsMembers) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 64; ++i) ids.push_back(Create(4096));
  std::thread destroyer([&] {
    for (size_t i = 0; i < ids.size(); i += 2) {
      (void)mm_->DestroyObject(User(1000), ids[i]);
    }
  });
  auto r = mm_->MigrateBatch(User(1000), To(ids, "lmem"));
  destroyer.join();
  ASSERT_TRUE(r.ok()) << r.status();
  for (size_t i = 0; i < ids.size(); ++i) {
    const absl::Status& s = r->entries[i].status;
    EXPECT_TRUE(s.ok() || absl::IsNotFound(s)) << i << ": " << s;
    if (i % 2 == 1) {
      EXPECT_TRUE(s.ok()) << i << ": " << s;
    }
  }
  ASSERT_TRUE(mm_->WaitFence(User(1000), r->array_fence_id, Soon()).ok());
  std::vector<uint64_t> rest;
  for (size_t i = 1; i < ids.size(); i += 2) rest.push_back(ids[i]);
  ASSERT_TRUE(mm_->DestroyBatch(User(1000), rest).ok());
  EXPECT_TRUE(mm_->CheckInvariantsForTest().ok());
}

// Fills lmem (4 MiB) with `n` evictable objects of `size` bytes.
std::vector<uint64_t> FillLmem(MemoryManager& mm, int n, uint64_t size) {
  std::vector<uint64_t> ids;
  MemoryManager::CreateRequest req;
  req.size = size;
  req.placements = {"lmem", "smem"};
  for (int i = 0; i < n; ++i) {
    auto r = mm.CreateObject(User(1000), req);
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) ids.push_back(r->object_id);
  }
  return ids;
}

uint64_t Evictions(MemoryManager& mm) {
  auto r = mm.GetRegion("lmem");
  return r.ok() ? r->evictions : 0;
}

TEST_F(BatchTest, MigrateBatchEvictsOnceForTheBatchsTotalNeed) {
  const uint64_t kSize = 256 << 10;
  std::vector<uint64_t> residents = FillLmem(*mm_, 16, kSize);  // lmem full
  std::vector<uint64_t> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(Create(kSize));
  const uint64_t passes = mm_->Stats().eviction_passes;
  const uint64_t evictions = Evictions(*mm_);
  auto r = mm_->MigrateBatch(User(1000), To(ids, "lmem"));
  ASSERT_TRUE(r.ok()) << r.status();
  for (const auto& e : r->entries) EXPECT_TRUE(e.status.ok()) << e.status;
  ASSERT_TRUE(mm_->WaitFence(User(1000), r->array_fence_id, Soon()).ok());
  // One pass for 2 MiB, not eight passes of 256 KiB; exactly the eight
  // least recently used residents made room.
  EXPECT_EQ(mm_->Stats().eviction_passes - passes, 1u);
  EXPECT_EQ(Evictions(*mm_) - evictions, 8u);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(RegionOf(residents[i]), i < 8 ? "smem" : "lmem") << i;
  }
  for (uint64_t id : ids) EXPECT_EQ(RegionOf(id), "lmem");
  EXPECT_TRUE(mm_->CheckInvariantsForTest().ok());
}

TEST_F(BatchTest, SingleMigratesEvictOncePerEntry) {
  // The contrast the batch is measured against.
  const uint64_t kSize = 256 << 10;
  FillLmem(*mm_, 16, kSize);
  std::vector<uint64_t> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(Create(kSize));
  const uint64_t passes = mm_->Stats().eviction_passes;
  for (uint64_t id : ids)
    ASSERT_TRUE(mm_->Migrate(User(1000), id, "lmem").ok());
  EXPECT_EQ(mm_->Stats().eviction_passes - passes, 8u);
}

TEST_F(BatchTest, CreateBatchEvictsOnceAndNeverEvictsItsOwnObjects) {
  const uint64_t kSize = 256 << 10;
  std::vector<uint64_t> residents = FillLmem(*mm_, 16, kSize);
  std::vector<MemoryManager::CreateRequest> creates(20);  // 5 MiB > lmem
  for (auto& c : creates) {
    c.size = kSize;
    c.placements = {"lmem", "smem"};
  }
  const uint64_t passes = mm_->Stats().eviction_passes;
  auto r = mm_->CreateBatch(User(1000), creates);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(mm_->WaitFence(User(1000), r->array_fence_id, Soon()).ok());
  EXPECT_EQ(mm_->Stats().eviction_passes - passes, 1u);
  // Every resident made way; the first 16 entries fit in lmem, the last 4
  // went to their second placement rather than evicting their batch-mates.
  for (uint64_t id : residents) EXPECT_EQ(RegionOf(id), "smem");
  for (size_t i = 0; i < r->entries.size(); ++i) {
    ASSERT_TRUE(r->entries[i].status.ok()) << r->entries[i].status;
    EXPECT_EQ(RegionOf(r->entries[i].object_id), i < 16 ? "lmem" : "smem") << i;
  }
  EXPECT_TRUE(mm_->CheckInvariantsForTest().ok());
}

TEST_F(BatchTest, CreateBatchWithRoomEvictsNothing) {
  std::vector<MemoryManager::CreateRequest> creates(8);
  for (auto& c : creates) {
    c.size = 4096;
    c.placements = {"lmem"};
  }
  auto r = mm_->CreateBatch(User(1000), creates);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(mm_->Stats().eviction_passes, 0u);
  EXPECT_EQ(Evictions(*mm_), 0u);
}

TEST_F(BatchTest, ExecBatchRunsEveryCommandInOrderUnderOneArray) {
  const uint64_t a = Create(8192), b = Create(8192);
  using Op = MemoryManager::ExecEntry::Op;
  std::vector<MemoryManager::ExecEntry> x(4);
  x[0] = {Op::kFill, a, 0, 0, 0, 0, 0x5A};     // a = 0x5A..
  x[1] = {Op::kCopy, b, 4096, a, 0, 4096, 0};  // b[4K,8K) = a[0,4K)
  x[2] = {Op::kChecksum, b, 0, 0, 0, 0, 0};    // whole of b
  x[3] = {Op::kFill, a, 4096, 0, 0, 0, 0x11};  // to the end
  auto r = mm_->ExecBatch(User(1000), x);
  ASSERT_TRUE(r.ok()) << r.status();
  auto array = mm_->WaitFence(User(1000), r->array_fence_id, Soon());
  ASSERT_TRUE(array.ok());
  EXPECT_TRUE(array->error.ok());
  EXPECT_EQ(array->array->counts().members, 4u);
  EXPECT_EQ(array->array->counts().blit_ok, 4u);
  for (const auto& e : r->entries) {
    ASSERT_TRUE(e.status.ok()) << e.status;
    EXPECT_NE(e.fence_id, 0u);
  }
  EXPECT_EQ(r->entries[1].object_id, b);  // a Copy reports its destination
  // The checksum saw the copy before it (request order on the engine).
  std::vector<uint8_t> want(8192, 0);
  std::fill(want.begin() + 4096, want.end(), 0x5A);
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t c : want) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  ASSERT_NE(r->entries[2].checksum, nullptr);
  EXPECT_EQ(*r->entries[2].checksum, h);
  std::vector<uint8_t> out(8192);
  ASSERT_TRUE(mm_->Read(User(1000), a, 0, absl::MakeSpan(out), Soon()).ok());
  EXPECT_EQ(out[0], 0x5A);
  EXPECT_EQ(out[4095], 0x5A);
  EXPECT_EQ(out[4096], 0x11);
  EXPECT_EQ(out[8191], 0x11);
}

TEST_F(BatchTest, ExecBatchEntriesFailAloneWithTheirOwnCodes) {
  const uint64_t mine = Create(4096);
  const uint64_t theirs = Create(4096, User(2000));
  using Op = MemoryManager::ExecEntry::Op;
  std::vector<MemoryManager::ExecEntry> x(6);
  x[0] = {Op::kFill, mine, 0, 0, 0, 0, 1};
  x[1] = {Op::kFill, theirs, 0, 0, 0, 0, 2};
  x[2] = {Op::kFill, 999999, 0, 0, 0, 0, 3};
  x[3] = {Op::kFill, mine, 4096, 0, 0, 1, 4};      // beyond the end
  x[4] = {Op::kCopy, mine, 0, mine, 100, 200, 0};  // overlapping
  x[5] = {Op::kChecksum, mine, 0, 0, 0, 0, 0};
  auto r = mm_->ExecBatch(User(1000), x);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->entries[0].status.ok());
  EXPECT_EQ(r->entries[1].status,
            absl::PermissionDeniedError("permission denied"));
  EXPECT_EQ(r->entries[2].status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(r->entries[3].status.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(r->entries[4].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(r->entries[5].status.ok());
  for (int i : {1, 2, 3, 4}) EXPECT_EQ(r->entries[i].fence_id, 0u) << i;
  ASSERT_TRUE(mm_->WaitFence(User(1000), r->array_fence_id, Soon()).ok());
  EXPECT_EQ(r->array->counts().members, 2u);
  // The other principal's object was not touched.
  std::vector<uint8_t> out(4096, 0xAA);
  ASSERT_TRUE(
      mm_->Read(User(2000), theirs, 0, absl::MakeSpan(out), Soon()).ok());
  EXPECT_EQ(out, std::vector<uint8_t>(4096, 0));
  EXPECT_EQ(mm_->ExecBatch(User(1000), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<MemoryManager::ExecEntry> many(
      MemoryManager::kMaxBatchEntries + 1, x[0]);
  EXPECT_EQ(mm_->ExecBatch(User(1000), many).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(BatchTest, ExecBatchArrayCarriesTheFirstFailedCommandsError) {
  const uint64_t a = Create(4096), b = Create(4096);
  // Unknown state first: the later entry on it is DATA_LOSS alone.
  ASSERT_TRUE(mm_->faults().Add({FaultKind::kFailBlit}).ok());
  ASSERT_TRUE(mm_->faults().Add({FaultKind::kBanMemcpy}).ok());
  auto m = mm_->Migrate(User(1000), a, "lmem");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(mm_->WaitFence(User(1000), *m, Soon()).ok());
  mm_->faults().Clear();
  using Op = MemoryManager::ExecEntry::Op;
  std::vector<MemoryManager::ExecEntry> x(2);
  x[0] = {Op::kFill, a, 0, 0, 0, 0, 1};
  x[1] = {Op::kFill, b, 0, 0, 0, 0, 2};
  auto r = mm_->ExecBatch(User(1000), x);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->entries[0].status.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(r->entries[1].status.ok());
  // An engine failure in a member is the array's error.
  ASSERT_TRUE(mm_->faults().Add({FaultKind::kWedgeEngine}).ok());
  std::vector<MemoryManager::ExecEntry> y(2, x[1]);
  auto failed = mm_->ExecBatch(User(1000), y);
  ASSERT_TRUE(failed.ok());
  auto f = mm_->WaitFence(User(1000), failed->array_fence_id, Soon());
  ASSERT_TRUE(f.ok());
  mm_->faults().Clear();
  EXPECT_FALSE(f->error.ok());
  EXPECT_EQ(f->array->counts().failed, 2u);
  EXPECT_EQ(f->error, failed->entries[0].fence->error());  // the first
}

TEST_F(BatchTest, DestroyBatchArraySignalsOnceInFlightWorkIsDone) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(Create(64 << 10));
  auto m = mm_->MigrateBatch(User(1000), To(ids, "lmem"));
  ASSERT_TRUE(m.ok());
  auto d = mm_->DestroyBatch(User(1000), ids);  // migrations may be queued
  ASSERT_TRUE(d.ok()) << d.status();
  for (const auto& e : d->entries) EXPECT_TRUE(e.status.ok()) << e.status;
  auto f = mm_->WaitFence(User(1000), d->array_fence_id, Soon());
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->signaled);
  for (const FenceRef& member : d->array->members()) {
    EXPECT_TRUE(member->IsSignaled());
  }
  EXPECT_TRUE(mm_->CheckInvariantsForTest().ok());
}

TEST_F(BatchTest, ExecBatchRacingDestroyOfItsMembers) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 64; ++i) ids.push_back(Create(4096));
  using Op = MemoryManager::ExecEntry::Op;
  std::vector<MemoryManager::ExecEntry> x;
  for (uint64_t id : ids) x.push_back({Op::kFill, id, 0, 0, 0, 0, 7});
  std::thread destroyer([&] {
    for (size_t i = 0; i < ids.size(); i += 2) {
      (void)mm_->DestroyObject(User(1000), ids[i]);
    }
  });
  auto r = mm_->ExecBatch(User(1000), x);
  destroyer.join();
  ASSERT_TRUE(r.ok()) << r.status();
  for (size_t i = 0; i < ids.size(); ++i) {
    const absl::Status& s = r->entries[i].status;
    EXPECT_TRUE(s.ok() || absl::IsNotFound(s)) << i << ": " << s;
    if (i % 2 == 1) {
      EXPECT_TRUE(s.ok()) << i << ": " << s;
    }
  }
  ASSERT_TRUE(mm_->WaitFence(User(1000), r->array_fence_id, Soon()).ok());
  std::vector<uint64_t> rest;
  for (size_t i = 1; i < ids.size(); i += 2) rest.push_back(ids[i]);
  ASSERT_TRUE(mm_->DestroyBatch(User(1000), rest).ok());
  EXPECT_TRUE(mm_->CheckInvariantsForTest().ok());
}

}  // namespace
}  // namespace gpumig
