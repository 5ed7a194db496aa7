// MemoryManager's request validation: the codes docs/api.md promises
// (INVALID_ARGUMENT for a malformed request, OUT_OF_RANGE for a range beyond
// the object), messages that name the field first, and nothing changed by a
// refused request. The daemon passes these through unchanged.
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "core/manager/memory_manager.h"
#include "core/manager/test_util.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

using absl::StatusCode;
using testing::MakeSimManager;
using testing::Soon;
using testing::User;

class ValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = MakeSimManager();
    ASSERT_TRUE(m.ok()) << m.status();
    mm_ = *std::move(m);
    id_ = Create(64 << 10);
  }
  uint64_t Create(uint64_t size) {
    MemoryManager::CreateRequest req;
    req.size = size;
    req.placements = {"smem", "lmem"};
    auto r = mm_->CreateObject(me_, req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->object_id : 0;
  }
  // The code, and that the message starts with "<field>:".
  static void ExpectField(const absl::Status& s, StatusCode code,
                          const std::string& field) {
    EXPECT_EQ(s.code(), code) << s;
    EXPECT_TRUE(absl::StartsWith(s.message(), field + ":")) << s;
  }
  size_t Objects() { return mm_->ListObjects(me_, false).size(); }

  Principal me_ = User(1000);
  std::unique_ptr<MemoryManager> mm_;
  uint64_t id_ = 0;
};

TEST_F(ValidationTest, MalformedCreatesAreInvalidArgumentAndCreateNothing) {
  struct Case {
    const char* what;
    MemoryManager::CreateRequest req;
    std::string field;
  };
  auto base = [] {
    MemoryManager::CreateRequest r;
    r.size = 4096;
    r.placements = {"smem"};
    return r;
  };
  std::vector<Case> cases;
  cases.push_back({"size 0", base(), "size_bytes"});
  cases.back().req.size = 0;
  cases.push_back({"bigger than any region", base(), "size_bytes"});
  cases.back().req.size = uint64_t{1} << 40;
  cases.push_back({"unknown region", base(), "placements[1]"});
  cases.back().req.placements = {"smem", "vram"};
  cases.push_back({"region twice", base(), "placements[1]"});
  cases.back().req.placements = {"smem", "smem"};
  cases.push_back({"cpu access beyond the aperture", base(), "size_bytes"});
  cases.back().req.placements = {"lmem"};
  cases.back().req.size = 3 << 20;  // aperture is 2 MiB
  cases.back().req.require_cpu_access = true;
  cases.push_back({"label too long", base(), "label"});
  cases.back().req.label = std::string(MemoryManager::kMaxLabelBytes + 1, 'a');
  cases.push_back({"label not UTF-8", base(), "label"});
  cases.back().req.label = "\xff\xfe";
  const size_t before = Objects();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ExpectField(mm_->CreateObject(me_, c.req).status(),
                StatusCode::kInvalidArgument, c.field);
  }
  EXPECT_EQ(Objects(), before);
  EXPECT_TRUE(mm_->CheckInvariantsForTest().ok());
}

TEST_F(ValidationTest, PageRuleIsTheManagersWhenConfigured) {
  // Without page_bytes (core tests) any size is fine...
  EXPECT_NE(Create(100000), 0u);
  // ...with it, the API's 4096 rule is refused by the manager itself.
  auto faults = std::make_unique<FaultInjector>();
  SimDeviceConfig config;
  config.regions.push_back(
      RegionConfig{"smem", RegionKind::kSmem, 1 << 20, 1 << 20, 4096});
  auto device = SimDevice::Create(std::move(config), faults.get());
  ASSERT_TRUE(device.ok());
  ManagerOptions options;
  options.page_bytes = 4096;
  auto mm = MemoryManager::Create(std::move(faults), *std::move(device),
                                  std::move(options));
  ASSERT_TRUE(mm.ok());
  MemoryManager::CreateRequest req;
  req.size = 4097;
  req.placements = {"smem"};
  ExpectField((*mm)->CreateObject(me_, req).status(),
              StatusCode::kInvalidArgument, "size_bytes");
  std::vector<MemoryManager::CreateRequest> batch(2, req);
  batch[0].size = 4096;
  auto b = (*mm)->CreateBatch(me_, batch);
  ExpectField(b.status(), StatusCode::kInvalidArgument,
              "entries[1].size_bytes");
  EXPECT_TRUE((*mm)->ListObjects(me_, false).empty());
  req.size = 8192;
  EXPECT_TRUE((*mm)->CreateObject(me_, req).ok());
}

TEST_F(ValidationTest, CreateBatchRefusesWhatCreateRefusesWhole) {
  std::vector<MemoryManager::CreateRequest> batch(3);
  for (auto& r : batch) {
    r.size = 4096;
    r.placements = {"smem"};
  }
  batch[2].label = "\xc3";  // truncated UTF-8
  const size_t before = Objects();
  ExpectField(mm_->CreateBatch(me_, batch).status(),
              StatusCode::kInvalidArgument, "entries[2].label");
  EXPECT_EQ(Objects(), before);
}

TEST_F(ValidationTest, RangesBeyondTheObjectAreOutOfRange) {
  const uint64_t size = 64 << 10;
  std::vector<uint8_t> buf(16);
  // offset past the end, offset + length past the end, and a sum that wraps.
  for (uint64_t offset : {size + 1, size - 8, ~uint64_t{0} - 4}) {
    SCOPED_TRACE(offset);
    ExpectField(mm_->Write(me_, id_, offset, buf, Soon()),
                StatusCode::kOutOfRange, "offset");
    ExpectField(mm_->Read(me_, id_, offset, absl::MakeSpan(buf), Soon()),
                StatusCode::kOutOfRange, "offset");
    ExpectField(mm_->ExecFill(me_, id_, offset, 16, 1).status(),
                StatusCode::kOutOfRange, "offset");
    ExpectField(mm_->ExecChecksum(me_, id_, offset, 16, Soon()).status(),
                StatusCode::kOutOfRange, "offset");
    ExpectField(mm_->ExecCopy(me_, id_, id_, offset, 0, 16).status(),
                StatusCode::kOutOfRange, "src_offset");
    ExpectField(mm_->ExecCopy(me_, id_, id_, 0, offset, 16).status(),
                StatusCode::kOutOfRange, "dst_offset");
    ExpectField(mm_->ResolveRange(me_, id_, offset, 16).status(),
                StatusCode::kOutOfRange, "offset");
  }
  // The range is checked before anything is queued: no fence was made.
  EXPECT_EQ(mm_->Stats().fences_created, 1u);  // the creation clear
}

TEST_F(ValidationTest, LengthZeroMeansToTheEnd) {
  auto n = mm_->ResolveRange(me_, id_, 4096, 0);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, (64u << 10) - 4096);
  auto at_end = mm_->ResolveRange(me_, id_, 64 << 10, 0);
  ASSERT_TRUE(at_end.ok());
  EXPECT_EQ(*at_end, 0u);
  // A fill to the end, then a checksum to the end: all of the tail is 7s.
  auto fill = mm_->ExecFill(me_, id_, 4096, 0, 7);
  ASSERT_TRUE(fill.ok()) << fill.status();
  std::vector<uint8_t> tail((64 << 10) - 4096);
  ASSERT_TRUE(mm_->Read(me_, id_, 4096, absl::MakeSpan(tail), Soon()).ok());
  for (uint8_t b : tail) ASSERT_EQ(b, 7);
  std::vector<uint8_t> head(4096, 0xee);
  ASSERT_TRUE(mm_->Read(me_, id_, 0, absl::MakeSpan(head), Soon()).ok());
  for (uint8_t b : head) ASSERT_EQ(b, 0);
}

TEST_F(ValidationTest, OverlappingCopyOfOneObjectIsInvalidArgument) {
  ExpectField(mm_->ExecCopy(me_, id_, id_, 0, 4096, 8192).status(),
              StatusCode::kInvalidArgument, "copy");
  // Adjacent ranges do not overlap.
  EXPECT_TRUE(mm_->ExecCopy(me_, id_, id_, 0, 8192, 8192).ok());
}

TEST_F(ValidationTest, OwnershipAndStateComeBeforeTheRange) {
  std::vector<uint8_t> buf(16);
  EXPECT_EQ(
      mm_->Read(User(1001), id_, ~uint64_t{0}, absl::MakeSpan(buf), Soon())
          .code(),
      StatusCode::kPermissionDenied);
  EXPECT_EQ(mm_->ResolveRange(User(0), id_, 0, 0).status().code(),
            StatusCode::kPermissionDenied);  // admins too: content is owner's
  EXPECT_EQ(mm_->ExecFill(me_, id_ + 100, ~uint64_t{0}, 1, 0).status().code(),
            StatusCode::kNotFound);
}

TEST_F(ValidationTest, MigrateNamesTheRegionField) {
  ExpectField(mm_->Migrate(me_, id_, "").status(), StatusCode::kInvalidArgument,
              "region");
  ExpectField(mm_->Migrate(me_, id_, "vram").status(),
              StatusCode::kInvalidArgument, "region");
  MemoryManager::CreateRequest req;
  req.size = 4096;
  req.placements = {"smem"};
  auto only_smem = mm_->CreateObject(me_, req);
  ASSERT_TRUE(only_smem.ok());
  ExpectField(mm_->Migrate(me_, only_smem->object_id, "lmem").status(),
              StatusCode::kInvalidArgument, "region");
}

}  // namespace
}  // namespace gpumig
