#include "core/manager/memory_manager.h"

#include <vector>

#include "core/manager/test_util.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

using testing::MakeSimManager;
using testing::Pattern;
using testing::Soon;
using testing::User;

class MemoryManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = MakeSimManager();
    ASSERT_TRUE(m.ok()) << m.status();
    mm_ = *std::move(m);
  }
  uint64_t Create(uint64_t size, std::vector<std::string> placements,
                  bool cpu = false, const Principal& who = User(1000)) {
    MemoryManager::CreateRequest req;
    req.size = size;
    req.placements = std::move(placements);
    req.require_cpu_access = cpu;
    auto r = mm_->CreateObject(who, req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->object_id : 0;
  }
  std::unique_ptr<MemoryManager> mm_;
};

TEST_F(MemoryManagerTest, NewObjectReadsZeros) {
  uint64_t id = Create(64 << 10, {"lmem", "smem"});
  std::vector<uint8_t> out(64 << 10, 0xAB);
  ASSERT_TRUE(mm_->Read(User(1000), id, 0, absl::MakeSpan(out), Soon()).ok());
  for (uint8_t b : out) ASSERT_EQ(b, 0);
}

TEST_F(MemoryManagerTest, WriteMigrateReadRoundTrips) {
  uint64_t id = Create(100000, {"lmem", "smem"});
  auto data = Pattern(100000, 7);
  ASSERT_TRUE(mm_->Write(User(1000), id, 0, data, Soon()).ok());
  for (const char* region : {"smem", "lmem", "smem"}) {
    auto f = mm_->Migrate(User(1000), id, region);
    ASSERT_TRUE(f.ok()) << f.status();
  }
  std::vector<uint8_t> out(100000);
  ASSERT_TRUE(mm_->Read(User(1000), id, 0, absl::MakeSpan(out), Soon()).ok());
  EXPECT_EQ(out, data);
  auto info = mm_->GetObject(User(1000), id);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->region, "smem");
}

TEST_F(MemoryManagerTest, OtherPrincipalIsDenied) {
  uint64_t id = Create(4096, {"smem"});
  std::vector<uint8_t> out(16);
  EXPECT_EQ(mm_->Read(User(1001), id, 0, absl::MakeSpan(out), Soon()).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(mm_->DestroyObject(User(1001), id).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(mm_->DestroyObject(User(1000), id).ok());
  EXPECT_TRUE(mm_->CheckInvariantsForTest().ok());
}

TEST(MemoryManagerHistoryTest, ObjectsMoveFenceOutlivesTheHistory) {
  testing::SimLayout layout;
  layout.fence_history = 2;
  auto mm = MakeSimManager(layout);
  ASSERT_TRUE(mm.ok());
  MemoryManager::CreateRequest req;
  req.size = 4096;
  req.placements = {"smem", "lmem"};
  auto first = (*mm)->CreateObject(User(1000), req);
  ASSERT_TRUE(first.ok());
  std::vector<uint64_t> others;
  for (int i = 0; i < 8; ++i) {
    auto r = (*mm)->CreateObject(User(1000), req);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE((*mm)->WaitFence(User(1000), r->fence_id, Soon()).ok());
    others.push_back(r->object_id);
  }
  // Still the first object's move fence: still queryable.
  EXPECT_TRUE((*mm)->GetFence(User(1000), first->fence_id).ok());
  // Once the object moves on, its old fence may be forgotten.
  auto moved = (*mm)->Migrate(User(1000), first->object_id, "lmem");
  ASSERT_TRUE(moved.ok());
  ASSERT_TRUE((*mm)->WaitFence(User(1000), *moved, Soon()).ok());
  for (uint64_t id : others) {
    ASSERT_TRUE((*mm)->DestroyObject(User(1000), id).ok());
  }
  auto r = (*mm)->CreateObject(User(1000), req);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE((*mm)->WaitFence(User(1000), r->fence_id, Soon()).ok());
  auto r2 = (*mm)->CreateObject(User(1000), req);
  ASSERT_TRUE(r2.ok());
  ASSERT_TRUE((*mm)->WaitFence(User(1000), r2->fence_id, Soon()).ok());
  EXPECT_EQ((*mm)->GetFence(User(1000), first->fence_id).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE((*mm)->GetFence(User(1000), *moved).ok());
}

TEST_F(MemoryManagerTest, EvictionMakesRoomAndPreservesContent) {
  // LMEM is 4 MiB: three 2 MiB objects force an eviction.
  std::vector<uint64_t> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(Create(2 << 20, {"lmem", "smem"}));
    ASSERT_TRUE(
        mm_->Write(User(1000), ids.back(), 0, Pattern(2 << 20, i), Soon())
            .ok());
  }
  std::vector<uint8_t> out(2 << 20);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        mm_->Read(User(1000), ids[i], 0, absl::MakeSpan(out), Soon()).ok());
    EXPECT_EQ(out, Pattern(2 << 20, i)) << "object " << i;
  }
  auto lmem = mm_->GetRegion("lmem");
  ASSERT_TRUE(lmem.ok());
  EXPECT_GE(lmem->evictions, 1u);
  for (uint64_t id : ids) ASSERT_TRUE(mm_->DestroyObject(User(1000), id).ok());
}

}  // namespace
}  // namespace gpumig
