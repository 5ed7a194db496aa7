// MemoryManager batches: whole-request validation, independent entries in
// request order, and the registered fence array.
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
    if (i % 2 == 1) EXPECT_TRUE(s.ok()) << i << ": " << s;
  }
  ASSERT_TRUE(mm_->WaitFence(User(1000), r->array_fence_id, Soon()).ok());
  std::vector<uint64_t> rest;
  for (size_t i = 1; i < ids.size(); i += 2) rest.push_back(ids[i]);
  ASSERT_TRUE(mm_->DestroyBatch(User(1000), rest).ok());
  EXPECT_TRUE(mm_->CheckInvariantsForTest().ok());
}

}  // namespace
}  // namespace gpumig
