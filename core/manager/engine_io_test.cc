// Read and Write of an object outside the CPU aperture go through the copy
// engine. When the engine fails the transfer the call answers ABORTED (a
// retryable failure, docs/api.md "Errors"), never INTERNAL (a daemon bug),
// and a retry once the engine works again succeeds with exact content.
#include <cstdint>
#include <vector>

#include "core/manager/memory_manager.h"
#include "core/manager/test_util.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

using testing::MakeSimManager;
using testing::Pattern;
using testing::Soon;
using testing::User;

constexpr uint64_t kSize = 3 << 20;  // larger than the 2 MiB aperture

TEST(EngineIoTest, FailedTransferIsAbortedAndARetrySucceeds) {
  auto m = MakeSimManager();
  ASSERT_TRUE(m.ok()) << m.status();
  MemoryManager& mm = **m;
  MemoryManager::CreateRequest req;
  req.size = kSize;
  req.placements = {"lmem"};
  auto created = mm.CreateObject(User(1000), req);
  ASSERT_TRUE(created.ok()) << created.status();
  const uint64_t id = created->object_id;
  const std::vector<uint8_t> data = Pattern(kSize, 3);
  ASSERT_TRUE(mm.Write(User(1000), id, 0, data, Soon()).ok());

  FaultSpec wedge;
  wedge.kind = FaultKind::kWedgeEngine;
  auto wedge_id = mm.faults().Add(wedge);
  ASSERT_TRUE(wedge_id.ok()) << wedge_id.status();

  std::vector<uint8_t> out(kSize, 0x5A);
  absl::Status read = mm.Read(User(1000), id, 0, absl::MakeSpan(out), Soon());
  EXPECT_EQ(read.code(), absl::StatusCode::kAborted) << read;
  EXPECT_NE(read.message().find("copy engine transfer failed"),
            absl::string_view::npos)
      << read;
  const std::vector<uint8_t> other = Pattern(kSize, 4);
  absl::Status write = mm.Write(User(1000), id, 0, other, Soon());
  EXPECT_EQ(write.code(), absl::StatusCode::kAborted) << write;

  // The object is not marked unknown: a transfer failure loses no content
  // the object holds, so retrying the same call is right.
  auto info = mm.GetObject(User(1000), id);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state, ObjectState::kOk);

  ASSERT_TRUE(mm.faults().Remove(*wedge_id).ok());
  ASSERT_TRUE(mm.Write(User(1000), id, 0, other, Soon()).ok());
  ASSERT_TRUE(mm.Read(User(1000), id, 0, absl::MakeSpan(out), Soon()).ok());
  EXPECT_EQ(out, other);
}

TEST(EngineIoTest, InsideTheApertureTheEngineIsNotUsed) {
  auto m = MakeSimManager();
  ASSERT_TRUE(m.ok()) << m.status();
  MemoryManager& mm = **m;
  MemoryManager::CreateRequest req;
  req.size = 64 << 10;
  req.placements = {"lmem"};
  req.require_cpu_access = true;
  auto created = mm.CreateObject(User(1000), req);
  ASSERT_TRUE(created.ok()) << created.status();
  const std::vector<uint8_t> data = Pattern(req.size, 5);
  ASSERT_TRUE(mm.Write(User(1000), created->object_id, 0, data, Soon()).ok());
  FaultSpec wedge;
  wedge.kind = FaultKind::kWedgeEngine;
  ASSERT_TRUE(mm.faults().Add(wedge).ok());
  std::vector<uint8_t> out(req.size);
  ASSERT_TRUE(
      mm.Read(User(1000), created->object_id, 0, absl::MakeSpan(out), Soon())
          .ok());
  EXPECT_EQ(out, data);
}

}  // namespace
}  // namespace gpumig
