// End-to-end tests of the ObjectService batch RPCs (CreateBatch,
// MigrateBatch, DestroyBatch) and the fence array, through the real gpumigd
// on a unix socket, with the harness of tests/e2e/e2e_harness.h.
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

}  // namespace
}  // namespace gpumig
