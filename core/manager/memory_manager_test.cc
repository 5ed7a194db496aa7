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
