// QueuedCopyEngine, the CopyEngine front end of the sim and CUDA engines:
// each call becomes exactly one EngineCommand for the backend, in call
// order, carrying its arguments and dependencies; inflight() counts what the
// backend has not signalled; the shared checks refuse malformed commands
// and the engine-side faults are scoped by the region a command writes.
#include "core/device/queued_engine.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "core/fault/fault_injector.h"
#include "core/fence/fence.h"
#include "core/mem/region.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

constexpr uint64_t kSize = 8192;

// A backend that only records: what a real one's queue would receive.
class RecordingEngine final : public QueuedCopyEngine {
 public:
  RecordingEngine() : QueuedCopyEngine("rec") {}
  std::vector<EngineCommand> commands;
  std::vector<std::string> names;
  // The backend's completion: signal the i-th command.
  void Complete(size_t i, absl::Status error = absl::OkStatus()) {
    ASSERT_TRUE(commands[i].fence->SignalWithError(std::move(error)).ok());
    CountSignalled();
  }

 private:
  FenceRef Submit(EngineCommand cmd, absl::string_view name) override {
    cmd.fence = Fence::Create(name);
    CountSubmitted();
    FenceRef f = cmd.fence;
    names.emplace_back(name);
    commands.push_back(std::move(cmd));
    return f;
  }
};

std::unique_ptr<Region> MakeRegion(const char* name) {
  RegionConfig c;
  c.name = name;
  c.kind = RegionKind::kLmem;
  c.size = 1 << 20;
  c.aperture = 0;
  auto r = Region::Create(c);
  EXPECT_TRUE(r.ok()) << r.status();
  return *std::move(r);
}

class QueuedEngineTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (size_t i = 0; i < engine_.commands.size(); ++i) {
      if (!engine_.commands[i].fence->IsSignaled()) engine_.Complete(i);
    }
    engine_.commands.clear();
  }
  std::unique_ptr<Region> a_ = MakeRegion("lmem");
  std::unique_ptr<Region> b_ = MakeRegion("smem");
  SgTableRef src_ = *a_->Allocate(kSize, false);
  SgTableRef dst_ = *b_->Allocate(kSize, false);
  RecordingEngine engine_;
};

TEST_F(QueuedEngineTest, EachCallIsOneCommandInCallOrderWithItsArguments) {
  FenceRef dep = Fence::Create("dep");
  uint8_t host[16] = {};
  auto sum = std::make_shared<uint64_t>(0);
  FenceRef c = engine_.Copy(src_, 1, dst_, 2, 3, {dep}, true);
  FenceRef f = engine_.Fill(dst_, 4, 5, 0xAB, {}, false);
  FenceRef k = engine_.Checksum(src_, 6, 7, sum, {});
  FenceRef r = engine_.ReadToHost(src_, 8, 9, host, {});
  FenceRef w = engine_.WriteFromHost(host, dst_, 10, 11, {});
  ASSERT_EQ(engine_.commands.size(), 5u);
  EXPECT_EQ(engine_.names,
            (std::vector<std::string>{"rec-copy", "rec-fill", "rec-checksum",
                                      "rec-read", "rec-write"}));
  const EngineCommand& copy = engine_.commands[0];
  EXPECT_EQ(copy.op, EngineOp::kCopy);
  EXPECT_EQ(copy.fence, c);
  EXPECT_EQ(copy.src, src_);
  EXPECT_EQ(copy.dst, dst_);
  EXPECT_EQ(copy.src_offset, 1u);
  EXPECT_EQ(copy.dst_offset, 2u);
  EXPECT_EQ(copy.length, 3u);
  ASSERT_EQ(copy.deps.size(), 1u);
  EXPECT_EQ(copy.deps[0], dep);  // the backend must await it
  EXPECT_TRUE(copy.inject_failure);
  const EngineCommand& fill = engine_.commands[1];
  EXPECT_EQ(fill.op, EngineOp::kFill);
  EXPECT_EQ(fill.fence, f);
  EXPECT_EQ(fill.dst, dst_);
  EXPECT_EQ(fill.dst_offset, 4u);
  EXPECT_EQ(fill.length, 5u);
  EXPECT_EQ(fill.value, 0xAB);
  EXPECT_FALSE(fill.inject_failure);
  const EngineCommand& checksum = engine_.commands[2];
  EXPECT_EQ(checksum.op, EngineOp::kChecksum);
  EXPECT_EQ(checksum.fence, k);
  EXPECT_EQ(checksum.src_offset, 6u);
  EXPECT_EQ(checksum.result, sum);
  const EngineCommand& read = engine_.commands[3];
  EXPECT_EQ(read.op, EngineOp::kRead);
  EXPECT_EQ(read.fence, r);
  EXPECT_EQ(read.host_dst, host);
  EXPECT_EQ(read.src_offset, 8u);
  const EngineCommand& write = engine_.commands[4];
  EXPECT_EQ(write.op, EngineOp::kWrite);
  EXPECT_EQ(write.fence, w);
  EXPECT_EQ(write.host_src, host);
  EXPECT_EQ(write.dst_offset, 10u);
  EXPECT_EQ(write.length, 11u);
  dep->Signal().IgnoreError();
}

TEST_F(QueuedEngineTest, InflightCountsSubmittedNotYetSignalled) {
  EXPECT_EQ(engine_.inflight(), 0u);
  engine_.Fill(dst_, 0, kSize, 0, {});
  engine_.Fill(dst_, 0, kSize, 1, {});
  engine_.Fill(dst_, 0, kSize, 2, {});
  EXPECT_EQ(engine_.inflight(), 3u);
  engine_.Complete(0);
  engine_.Complete(1, absl::InternalError("engine fault"));  // failed counts
  EXPECT_EQ(engine_.inflight(), 1u);
  engine_.Complete(2);
  EXPECT_EQ(engine_.inflight(), 0u);
}

TEST_F(QueuedEngineTest, MalformedCommandsAreInvalidArgumentNamingTheSide) {
  const auto owns = [this](const Region* r) {
    return r == a_.get() || r == b_.get();
  };
  EngineCommand cmd;
  cmd.op = EngineOp::kCopy;
  cmd.src = src_;
  cmd.dst = dst_;
  cmd.length = kSize;
  EXPECT_TRUE(ValidateEngineCommand(cmd, owns).ok());
  cmd.dst_offset = 1;  // [1, 1 + 8192) is past the destination's end
  absl::Status s = ValidateEngineCommand(cmd, owns);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(s.message(), "destination")) << s;
  cmd.dst_offset = 0;
  cmd.src_offset = ~uint64_t{0};  // would wrap
  s = ValidateEngineCommand(cmd, owns);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(s.message(), "source")) << s;
  // A table of another device's region.
  std::unique_ptr<Region> foreign = MakeRegion("elsewhere");
  cmd.src_offset = 0;
  cmd.src = *foreign->Allocate(kSize, false);
  EXPECT_EQ(ValidateEngineCommand(cmd, owns).code(),
            absl::StatusCode::kInvalidArgument);
  cmd.src.reset();
  EXPECT_EQ(ValidateEngineCommand(cmd, owns).code(),
            absl::StatusCode::kInvalidArgument);
  // Null results and host buffers: reading one byte needs somewhere to put
  // it; reading none does not.
  for (EngineOp op : {EngineOp::kChecksum, EngineOp::kRead}) {
    EngineCommand reads;
    reads.op = op;
    reads.src = src_;
    reads.length = 1;
    EXPECT_EQ(ValidateEngineCommand(reads, owns).code(),
              absl::StatusCode::kInvalidArgument);
    if (op == EngineOp::kRead) {
      reads.length = 0;
      EXPECT_TRUE(ValidateEngineCommand(reads, owns).ok());
    }
  }
}

TEST_F(QueuedEngineTest, WedgeIsScopedByTheRegionACommandWrites) {
  FaultInjector faults;
  FaultSpec wedge;
  wedge.kind = FaultKind::kWedgeEngine;
  wedge.region = "smem";  // dst_ is in smem, src_ in lmem
  ASSERT_TRUE(faults.Add(wedge).ok());
  EngineCommand copy;
  copy.op = EngineOp::kCopy;
  copy.src = src_;
  copy.dst = dst_;
  EXPECT_EQ(ApplyEngineFaults(&faults, copy).code(),
            absl::StatusCode::kInternal);
  EngineCommand sum;  // reads lmem, writes only host memory
  sum.op = EngineOp::kChecksum;
  sum.src = src_;
  EXPECT_TRUE(ApplyEngineFaults(&faults, sum).ok());
  EngineCommand read_smem;
  read_smem.op = EngineOp::kRead;
  read_smem.src = dst_;
  EXPECT_EQ(ApplyEngineFaults(&faults, read_smem).code(),
            absl::StatusCode::kInternal);
  EXPECT_TRUE(ApplyEngineFaults(nullptr, copy).ok());  // no injector
}

}  // namespace
}  // namespace gpumig
