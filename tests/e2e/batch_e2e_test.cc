// End-to-end tests of the ObjectService batch RPCs (CreateBatch,
// MigrateBatch, DestroyBatch, ExecBatch) and the fence array, through the real
// gpumigd on a unix socket, with the harness of tests/e2e/e2e_harness.h.
// Per-entry PERMISSION_DENIED and unknown-state entries are covered in
// core/manager/batch_test.cc (one process, two principals).
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gpumig/v1/daemon.grpc.pb.h"
#include "gpumig/v1/faults.grpc.pb.h"
#include "gpumig/v1/fences.grpc.pb.h"
#include "gpumig/v1/objects.grpc.pb.h"
#include "gpumig/v1/regions.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_harness.h"

namespace gpumig {
namespace {

namespace v1 = ::gpumig::v1;
using e2e::CanConnect;
using e2e::Ctx;
using e2e::Daemon;
using e2e::DaemonBinary;
using e2e::kMiB;
using e2e::Pattern;
using e2e::ReadAll;
using e2e::Stubs;
using e2e::TempDir;
using e2e::TestConfig;
using e2e::WriteFile;

class BatchE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<Daemon>(dir_);
    ASSERT_TRUE(daemon_->Start({TestConfig()}));
    stubs_ = std::make_unique<Stubs>(daemon_->Channel());
  }
  // Creates n objects of `size` in smem via CreateBatch; returns handles.
  std::vector<std::string> CreateMany(int n, uint64_t size = 4096) {
    v1::CreateBatchRequest req;
    for (int i = 0; i < n; ++i) {
      v1::CreateObjectRequest* e = req.add_entries();
      e->set_size_bytes(size);
      e->add_placements("smem");
      e->add_placements("lmem");
    }
    req.set_wait(true);
    v1::BatchResponse resp;
    grpc::Status st = stubs_->objects->CreateBatch(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    std::vector<std::string> handles;
    for (const auto& r : resp.results()) {
      EXPECT_EQ(r.error_code(), 0) << r.error_message();
      handles.push_back(r.handle());
    }
    return handles;
  }
  std::string RegionOf(const std::string& handle) {
    v1::GetObjectRequest req;
    req.set_handle(handle);
    v1::Object obj;
    grpc::Status st = stubs_->objects->Get(Ctx().get(), req, &obj);
    return st.ok() ? obj.region() : "?";
  }
  bool Alive() {
    v1::PingRequest req;
    v1::PingResponse resp;
    return stubs_->daemon->Ping(Ctx().get(), req, &resp).ok();
  }
  TempDir dir_;
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<Stubs> stubs_;
};

TEST_F(BatchE2eTest, CreateMigrateDestroyWithArrayFence) {
  std::vector<std::string> handles = CreateMany(16);
  ASSERT_EQ(handles.size(), 16u);
  v1::MigrateBatchRequest req;
  for (const auto& h : handles) req.add_entries()->set_handle(h);
  req.set_region("lmem");
  req.set_wait(true);
  v1::BatchResponse resp;
  grpc::Status st = stubs_->objects->MigrateBatch(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.results_size(), 16);
  EXPECT_EQ(resp.succeeded(), 16u);
  EXPECT_EQ(resp.failed(), 0u);
  ASSERT_NE(resp.fence_id(), 0u);
  EXPECT_EQ(resp.fence().kind(), v1::FENCE_KIND_ARRAY);
  EXPECT_EQ(resp.fence().state(), v1::FENCE_STATE_SIGNALED);
  EXPECT_EQ(resp.fence().outcome(), v1::FENCE_OUTCOME_BLIT_OK);
  EXPECT_EQ(resp.fence().array().members(), 16u);
  EXPECT_EQ(resp.fence().array().blit_ok(), 16u);
  EXPECT_EQ(resp.fence().array().member_fence_ids_size(), 16);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(resp.results(i).handle(), handles[i]);  // request order
    EXPECT_EQ(resp.fence().array().member_fence_ids(i),
              resp.results(i).fence_id());
    EXPECT_EQ(RegionOf(handles[i]), "lmem");
  }
  // FenceService.Get understands the array.
  v1::GetFenceRequest get;
  get.set_fence_id(resp.fence_id());
  v1::FenceStatus fs;
  ASSERT_TRUE(stubs_->fences->Get(Ctx().get(), get, &fs).ok());
  EXPECT_EQ(fs.kind(), v1::FENCE_KIND_ARRAY);
  EXPECT_EQ(fs.array().blit_ok(), 16u);

  v1::DestroyBatchRequest d;
  for (const auto& h : handles) d.add_handles(h);
  v1::BatchResponse dresp;
  ASSERT_TRUE(stubs_->objects->DestroyBatch(Ctx().get(), d, &dresp).ok());
  EXPECT_EQ(dresp.succeeded(), 16u);
  v1::BatchResponse again;
  ASSERT_TRUE(stubs_->objects->DestroyBatch(Ctx().get(), d, &again).ok());
  EXPECT_EQ(again.failed(), 16u);
  EXPECT_EQ(again.results(0).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(BatchE2eTest, MalformedBatchesAreRefusedWhole) {
  std::vector<std::string> handles = CreateMany(2);
  ASSERT_EQ(handles.size(), 2u);
  v1::BatchResponse resp;
  {  // zero entries
    v1::MigrateBatchRequest req;
    req.set_region("lmem");
    grpc::Status st = stubs_->objects->MigrateBatch(Ctx().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(st.error_message(), "entries"));
  }
  {  // one over the maximum
    v1::DestroyBatchRequest req;
    for (int i = 0; i < 4097; ++i) req.add_handles(handles[0]);
    grpc::Status st = stubs_->objects->DestroyBatch(Ctx().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(st.error_message(), "4096"))
        << st.error_message();
  }
  {  // duplicate handles
    v1::MigrateBatchRequest req;
    req.add_entries()->set_handle(handles[0]);
    req.add_entries()->set_handle(handles[1]);
    req.add_entries()->set_handle(handles[0]);
    req.set_region("lmem");
    grpc::Status st = stubs_->objects->MigrateBatch(Ctx().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(st.error_message(), "entries[2]"))
        << st.error_message();
  }
  {  // a bad handle and an unknown region name their entry
    v1::MigrateBatchRequest req;
    req.add_entries()->set_handle(handles[0]);
    req.add_entries()->set_handle("not-a-handle");
    req.set_region("lmem");
    grpc::Status st = stubs_->objects->MigrateBatch(Ctx().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(st.error_message(), "entries[1].handle"))
        << st.error_message();
    v1::MigrateBatchRequest r2;
    r2.add_entries()->set_handle(handles[0]);
    r2.add_entries()->set_handle(handles[1]);
    r2.mutable_entries(1)->set_region("nowhere");
    r2.set_region("lmem");
    st = stubs_->objects->MigrateBatch(Ctx().get(), r2, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(st.error_message(), "entries[1].region"))
        << st.error_message();
  }
  {  // a create entry with a bad size
    v1::CreateBatchRequest req;
    req.add_entries()->set_size_bytes(4096);
    req.mutable_entries(0)->add_placements("smem");
    req.add_entries()->set_size_bytes(100);
    req.mutable_entries(1)->add_placements("smem");
    grpc::Status st = stubs_->objects->CreateBatch(Ctx().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(st.error_message(), "entries[1].size_bytes"))
        << st.error_message();
  }
  // Nothing changed.
  EXPECT_EQ(RegionOf(handles[0]), "smem");
  EXPECT_EQ(RegionOf(handles[1]), "smem");
  v1::ListObjectsRequest list;
  v1::ListObjectsResponse objs;
  ASSERT_TRUE(stubs_->objects->List(Ctx().get(), list, &objs).ok());
  EXPECT_EQ(objs.objects_size(), 2);
}

TEST_F(BatchE2eTest, BatchLargerThanTheRegionFailsPerEntry) {
  // lmem is 16 MiB: 20 objects of 1 MiB can never all fit.
  std::vector<std::string> handles = CreateMany(20, kMiB);
  ASSERT_EQ(handles.size(), 20u);
  v1::MigrateBatchRequest req;
  for (const auto& h : handles) req.add_entries()->set_handle(h);
  req.set_region("lmem");
  req.set_wait(true);
  v1::BatchResponse resp;
  grpc::Status st = stubs_->objects->MigrateBatch(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  for (const auto& r : resp.results()) {
    EXPECT_TRUE(r.error_code() == 0 ||
                r.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED)
        << r.error_message();
  }
  EXPECT_EQ(resp.fence().state(), v1::FENCE_STATE_SIGNALED);
  EXPECT_TRUE(Alive());
}

TEST_F(BatchE2eTest, ClientCancellingMidBatchLeavesTheDaemonServing) {
  std::vector<std::string> handles = CreateMany(4096);
  ASSERT_EQ(handles.size(), 4096u);
  v1::MigrateBatchRequest req;
  for (const auto& h : handles) req.add_entries()->set_handle(h);
  req.set_region("lmem");
  req.set_wait(true);
  v1::BatchResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(1)));
  grpc::Status st = stubs_->objects->MigrateBatch(&ctx, req, &resp);
  EXPECT_TRUE(st.ok() ||
              st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
              st.error_code() == grpc::StatusCode::CANCELLED)
      << st.error_code() << " " << st.error_message();
  EXPECT_TRUE(Alive());
  // Every object is still there and in one region or the other.
  for (int i = 0; i < 4096; i += 512) {
    const std::string r = RegionOf(handles[i]);
    EXPECT_TRUE(r == "smem" || r == "lmem") << r;
  }
}

TEST_F(BatchE2eTest, ExecBatchRunsCommandsInOrderAndReturnsChecksums) {
  std::vector<std::string> h = CreateMany(2, 8192);
  ASSERT_EQ(h.size(), 2u);
  v1::ExecBatchRequest req;
  v1::FillOp* fill = req.add_entries()->mutable_fill();
  fill->set_handle(h[0]);
  fill->set_value(0x5A);
  v1::CopyOp* copy = req.add_entries()->mutable_copy();
  copy->set_src_handle(h[0]);
  copy->set_dst_handle(h[1]);
  copy->set_dst_offset(4096);
  copy->set_length(4096);
  req.add_entries()->mutable_checksum()->set_handle(h[1]);
  v1::FillOp* beyond = req.add_entries()->mutable_fill();
  beyond->set_handle(h[0]);
  beyond->set_offset(8192);
  beyond->set_length(1);
  v1::BatchResponse resp;
  grpc::Status st = stubs_->objects->ExecBatch(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.results_size(), 4);
  EXPECT_EQ(resp.succeeded(), 3u);
  EXPECT_EQ(resp.failed(), 1u);
  EXPECT_EQ(resp.results(1).handle(), h[1]);  // a Copy names its destination
  EXPECT_EQ(resp.results(3).error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(resp.results(3).fence_id(), 0u);
  // A Checksum makes the batch wait: the array is signalled in the reply.
  EXPECT_EQ(resp.fence().kind(), v1::FENCE_KIND_ARRAY);
  EXPECT_EQ(resp.fence().state(), v1::FENCE_STATE_SIGNALED);
  EXPECT_EQ(resp.fence().array().members(), 3u);
  EXPECT_EQ(resp.fence().array().blit_ok(), 3u);
  uint64_t want = 0xcbf29ce484222325ull;
  for (int i = 0; i < 8192; ++i) {
    want ^= i < 4096 ? 0 : 0x5A;
    want *= 0x100000001b3ull;
  }
  ASSERT_TRUE(resp.results(2).has_checksum());
  EXPECT_EQ(resp.results(2).checksum(), want);
  EXPECT_FALSE(resp.results(0).has_checksum());
}

TEST_F(BatchE2eTest, MalformedExecBatchesAreRefusedWholeNamingTheEntry) {
  std::vector<std::string> h = CreateMany(1);
  ASSERT_EQ(h.size(), 1u);
  auto refused = [&](v1::ExecBatchRequest req, const std::string& field) {
    v1::BatchResponse resp;
    grpc::Status st = stubs_->objects->ExecBatch(Ctx().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << field;
    EXPECT_TRUE(absl::StrContains(st.error_message(), field))
        << st.error_message();
  };
  v1::ExecBatchRequest ok;
  ok.add_entries()->mutable_fill()->set_handle(h[0]);
  ok.mutable_entries(0)->mutable_fill()->set_value(9);
  refused(v1::ExecBatchRequest(), "entries");
  {
    v1::ExecBatchRequest r = ok;
    r.add_entries();  // no op
    refused(r, "entries[1].op");
  }
  {
    v1::ExecBatchRequest r = ok;
    r.add_entries()->CopyFrom(ok.entries(0));
    r.mutable_entries(1)->set_wait(true);
    refused(r, "entries[1].wait");
  }
  {
    v1::ExecBatchRequest r = ok;
    r.add_entries()->mutable_checksum()->set_handle("bogus");
    refused(r, "entries[1].checksum.handle");
  }
  {
    v1::ExecBatchRequest r = ok;
    r.add_entries()->mutable_fill()->set_handle(h[0]);
    r.mutable_entries(1)->mutable_fill()->set_value(256);
    refused(r, "entries[1].fill.value");
  }
  {
    v1::ExecBatchRequest r;
    for (int i = 0; i < 4097; ++i) r.add_entries()->CopyFrom(ok.entries(0));
    refused(r, "4096");
  }
  // Nothing ran: the object still reads as zeros (its checksum).
  v1::ExecRequest sum;
  sum.mutable_checksum()->set_handle(h[0]);
  v1::ExecResponse out;
  ASSERT_TRUE(stubs_->objects->Exec(Ctx().get(), sum, &out).ok());
  uint64_t zeros = 0xcbf29ce484222325ull;
  for (int i = 0; i < 4096; ++i) zeros *= 0x100000001b3ull;
  EXPECT_EQ(out.checksum(), zeros);
}

TEST_F(BatchE2eTest, ClientTryCancelMidBatchLeavesEveryEntryAccountedFor) {
  std::vector<std::string> handles = CreateMany(4096);
  ASSERT_EQ(handles.size(), 4096u);
  // The engine is slow, so the waiting batch is surely mid-flight when the
  // client cancels.
  v1::InjectFaultRequest inject;
  inject.mutable_spec()->set_kind(v1::FAULT_KIND_ENGINE_LATENCY);
  inject.mutable_spec()->mutable_trigger()->set_always(true);
  inject.mutable_spec()->set_latency_us(200);
  v1::Fault injected;
  grpc::Status fst = stubs_->faults->Inject(Ctx().get(), inject, &injected);
  if (fst.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
    GTEST_SKIP() << "fault injection needs an admin principal (run as root)";
  }
  ASSERT_TRUE(fst.ok()) << fst.error_message();
  v1::MigrateBatchRequest req;
  for (const auto& h : handles) req.add_entries()->set_handle(h);
  req.set_region("lmem");
  req.set_wait(true);
  v1::BatchResponse resp;
  grpc::ClientContext ctx;
  std::thread canceller([&ctx] {
    absl::SleepFor(absl::Milliseconds(50));
    ctx.TryCancel();
  });
  grpc::Status st = stubs_->objects->MigrateBatch(&ctx, req, &resp);
  canceller.join();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::CANCELLED) << st.error_message();
  v1::ClearFaultsRequest clear;
  clear.set_all(true);
  v1::ClearFaultsResponse cleared;
  ASSERT_TRUE(stubs_->faults->Clear(Ctx().get(), clear, &cleared).ok());
  EXPECT_TRUE(Alive());
  // Entries already submitted went on; every object is in one region or the
  // other and can still be destroyed in one batch.
  for (int i = 0; i < 4096; i += 512) {
    const std::string r = RegionOf(handles[i]);
    EXPECT_TRUE(r == "smem" || r == "lmem") << r;
  }
  v1::DestroyBatchRequest d;
  for (const auto& h : handles) d.add_handles(h);
  d.set_wait(true);
  v1::BatchResponse dresp;
  ASSERT_TRUE(stubs_->objects->DestroyBatch(Ctx().get(), d, &dresp).ok());
  EXPECT_EQ(dresp.succeeded(), 4096u);
  EXPECT_EQ(dresp.fence().state(), v1::FENCE_STATE_SIGNALED);
}

}  // namespace
}  // namespace gpumig
