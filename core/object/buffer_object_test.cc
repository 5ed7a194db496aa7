// BufferObject: the placement it holds (and the references that keep a
// table's blocks alive), pin counting, the write-once unknown state and the
// DATA_LOSS every access then gets, and the placement list.
#include "core/object/buffer_object.h"

#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "core/fence/fence.h"
#include "core/mem/region.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

constexpr uint64_t kSize = 16 << 10;

std::unique_ptr<Region> MakeRegion(const char* name, RegionKind kind) {
  RegionConfig c;
  c.name = name;
  c.kind = kind;
  c.size = 1 << 20;
  c.aperture = kind == RegionKind::kSmem ? c.size : c.size / 2;
  auto r = Region::Create(c);
  EXPECT_TRUE(r.ok()) << r.status();
  return *std::move(r);
}

class BufferObjectTest : public ::testing::Test {
 protected:
  std::unique_ptr<Region> lmem_ = MakeRegion("lmem", RegionKind::kLmem);
  std::unique_ptr<Region> smem_ = MakeRegion("smem", RegionKind::kSmem);
  std::unique_ptr<Region> other_ = MakeRegion("lmem2", RegionKind::kLmem);
  BufferObject obj_{7,
                    kSize,
                    {lmem_.get(), smem_.get()},
                    Principal{1000, "uid:1000", false},
                    "weights",
                    false};
};

TEST_F(BufferObjectTest, ConstantsAreWhatItWasCreatedWith) {
  EXPECT_EQ(obj_.id(), 7u);
  EXPECT_EQ(obj_.size(), kSize);
  EXPECT_EQ(obj_.owner().name, "uid:1000");
  EXPECT_EQ(obj_.label(), "weights");
  EXPECT_LE(obj_.create_time(), absl::Now());
  EXPECT_EQ(obj_.region(), nullptr);  // unplaced until its first clear
  EXPECT_EQ(obj_.sg(), nullptr);
  EXPECT_EQ(obj_.state(), ObjectState::kOk);
  EXPECT_TRUE(obj_.CheckAccess().ok());
}

TEST_F(BufferObjectTest, PlacementListOrderAndMembership) {
  EXPECT_TRUE(obj_.AllowedIn(lmem_.get()));
  EXPECT_TRUE(obj_.AllowedIn(smem_.get()));
  EXPECT_FALSE(obj_.AllowedIn(other_.get()));
  EXPECT_EQ(obj_.NextPlacementAfter(lmem_.get()), smem_.get());
  EXPECT_EQ(obj_.NextPlacementAfter(smem_.get()), nullptr);
}

TEST_F(BufferObjectTest, PlacementHoldsTheTableUntilClearedOrReplaced) {
  SgTableRef first = *lmem_->Allocate(kSize, false);
  FenceRef f1 = Fence::Create("clear");
  obj_.SetPlacement(first, f1);
  EXPECT_EQ(obj_.region(), lmem_.get());
  EXPECT_EQ(obj_.move_fence(), f1);
  first.reset();  // the object's reference keeps the blocks
  EXPECT_EQ(lmem_->Usage().allocated_bytes, kSize);

  SgTableRef second = *smem_->Allocate(kSize, false);
  obj_.SetPlacement(second, Fence::Create("migrate"));
  EXPECT_EQ(lmem_->Usage().allocated_bytes, 0u);  // the old table went
  EXPECT_EQ(obj_.region(), smem_.get());

  SgTableRef held = obj_.ClearPlacement();
  EXPECT_EQ(held, second);
  EXPECT_EQ(obj_.region(), nullptr);
  EXPECT_EQ(obj_.sg(), nullptr);
  held.reset();
  second.reset();
  EXPECT_EQ(smem_->Usage().allocated_bytes, 0u);
  f1->Signal().IgnoreError();
}

TEST_F(BufferObjectTest, ExecFenceIsSeparateFromTheMoveFence) {
  FenceRef move = Fence::Create("clear");
  obj_.SetPlacement(*smem_->Allocate(kSize, false), move);
  FenceRef exec = Fence::Create("fill");
  obj_.SetExecFence(exec);
  EXPECT_EQ(obj_.exec_fence(), exec);
  EXPECT_EQ(obj_.move_fence(), move);
  obj_.ClearPlacement();
  move->Signal().IgnoreError();
  exec->Signal().IgnoreError();
}

TEST_F(BufferObjectTest, UnpinAtZeroIsRefusedAndChangesNothing) {
  EXPECT_EQ(obj_.Unpin(), -1);
  EXPECT_EQ(obj_.pin_count(), 0);
  EXPECT_EQ(obj_.Pin(), 1);
  EXPECT_EQ(obj_.Pin(), 2);
  EXPECT_EQ(obj_.Unpin(), 1);
  EXPECT_EQ(obj_.Unpin(), 0);
  EXPECT_EQ(obj_.Unpin(), -1);
  EXPECT_EQ(obj_.pin_count(), 0);
}

TEST_F(BufferObjectTest, ConcurrentPinsAndUnpinsBalance) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this] {
      for (int i = 0; i < 1000; ++i) {
        obj_.Pin();
        EXPECT_GE(obj_.Unpin(), 0);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(obj_.pin_count(), 0);
}

TEST_F(BufferObjectTest, UnknownStateIsWriteOnceAndRefusesAccess) {
  EXPECT_TRUE(obj_.MarkUnknown(absl::InternalError("blit failed"), 42));
  EXPECT_FALSE(obj_.MarkUnknown(absl::InternalError("second"), 43));
  EXPECT_TRUE(obj_.unknown());
  EXPECT_EQ(obj_.state(), ObjectState::kUnknown);
  EXPECT_EQ(obj_.unknown_fence_id(), 42u);  // the first marker's fence
  EXPECT_TRUE(absl::StrContains(obj_.unknown_reason(), "blit failed"));
  absl::Status access = obj_.CheckAccess();
  EXPECT_EQ(access.code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(access.message(), "blit failed")) << access;
}

TEST_F(BufferObjectTest, DestroyedIsSticky) {
  EXPECT_FALSE(obj_.destroyed());
  obj_.MarkDestroyed();
  EXPECT_TRUE(obj_.destroyed());
}

}  // namespace
}  // namespace gpumig
