// The client library's batch calls (CreateBatch, MigrateBatch, DestroyBatch,
// ExecBatch) against an in-process fake ObjectService on a unix socket: the
// requests they build (defaults, per-entry regions, every Exec command) and
// the conversion of BatchResponse (per-entry statuses in order, objects,
// checksums, the fence array's members and counts). The real daemon runs
// them end to end in tests/e2e (cli_batch_e2e_test.sh).
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/gpumig_client.h"
#include "gpumig/v1/objects.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace gpumig::client {
namespace {

namespace pb = ::gpumig::v1;

// Records each request; answers every entry OK (fence 100 + i) except those
// whose handle (or size 8192, for creates) marks them as failing.
class FakeObjects final : public pb::ObjectService::Service {
 public:
  grpc::Status CreateBatch(grpc::ServerContext*,
                           const pb::CreateBatchRequest* req,
                           pb::BatchResponse* resp) override {
    absl::MutexLock lock(&mu_);
    create_ = *req;
    for (int i = 0; i < req->entries_size(); ++i) {
      pb::BatchResult* r = resp->add_results();
      if (req->entries(i).size_bytes() == 8192) {
        r->set_error_code(grpc::StatusCode::RESOURCE_EXHAUSTED);
        r->set_error_message("no room");
        continue;
      }
      r->set_handle(absl::StrCat("obj-", 10 + i));
      r->set_fence_id(100 + i);
      r->mutable_object()->set_handle(r->handle());
      r->mutable_object()->set_size_bytes(req->entries(i).size_bytes());
      r->mutable_object()->set_region("lmem");
    }
    Finish(req->wait(), resp);
    return grpc::Status::OK;
  }
  grpc::Status MigrateBatch(grpc::ServerContext*,
                            const pb::MigrateBatchRequest* req,
                            pb::BatchResponse* resp) override {
    absl::MutexLock lock(&mu_);
    migrate_ = *req;
    for (int i = 0; i < req->entries_size(); ++i) {
      pb::BatchResult* r = resp->add_results();
      r->set_handle(req->entries(i).handle());
      if (req->entries(i).handle() == "obj-theirs") {
        r->set_error_code(grpc::StatusCode::PERMISSION_DENIED);
        r->set_error_message("permission denied");
        continue;
      }
      r->set_fence_id(100 + i);
    }
    Finish(req->wait(), resp);
    return grpc::Status::OK;
  }
  grpc::Status DestroyBatch(grpc::ServerContext*,
                            const pb::DestroyBatchRequest* req,
                            pb::BatchResponse* resp) override {
    absl::MutexLock lock(&mu_);
    destroy_ = *req;
    if (req->handles_size() == 0) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "entries: a batch needs at least one entry");
    }
    for (const std::string& h : req->handles())
      resp->add_results()->set_handle(h);
    Finish(req->wait(), resp);
    return grpc::Status::OK;
  }
  grpc::Status ExecBatch(grpc::ServerContext*, const pb::ExecBatchRequest* req,
                         pb::BatchResponse* resp) override {
    absl::MutexLock lock(&mu_);
    exec_ = *req;
    bool wait = req->wait();
    for (int i = 0; i < req->entries_size(); ++i) {
      pb::BatchResult* r = resp->add_results();
      r->set_fence_id(100 + i);
      if (req->entries(i).has_checksum()) {
        r->set_checksum(0xabc0 + i);
        wait = true;
      }
    }
    Finish(wait, resp);
    return grpc::Status::OK;
  }

  absl::Mutex mu_;
  pb::CreateBatchRequest create_ ABSL_GUARDED_BY(mu_);
  pb::MigrateBatchRequest migrate_ ABSL_GUARDED_BY(mu_);
  pb::DestroyBatchRequest destroy_ ABSL_GUARDED_BY(mu_);
  pb::ExecBatchRequest exec_ ABSL_GUARDED_BY(mu_);

 private:
  // Counts and, when waited for, a signalled array over the entries' fences.
  static void Finish(bool wait, pb::BatchResponse* resp) {
    resp->set_fence_id(999);
    uint32_t ok = 0;
    for (const pb::BatchResult& r : resp->results()) ok += r.error_code() == 0;
    resp->set_succeeded(ok);
    resp->set_failed(resp->results_size() - ok);
    if (!wait) return;
    pb::FenceStatus* f = resp->mutable_fence();
    f->set_fence_id(999);
    f->set_kind(pb::FENCE_KIND_ARRAY);
    f->set_state(pb::FENCE_STATE_SIGNALED);
    f->set_outcome(pb::FENCE_OUTCOME_BLIT_OK);
    pb::FenceArray* a = f->mutable_array();
    for (const pb::BatchResult& r : resp->results()) {
      if (r.fence_id() != 0) a->add_member_fence_ids(r.fence_id());
    }
    a->set_members(a->member_fence_ids_size());
    a->set_blit_ok(a->members());
    a->set_refused(resp->failed());
  }
};

class BatchClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string dir = tmp != nullptr && std::string(tmp).size() < 60
                          ? std::string(tmp)
                          : std::string("/tmp");
    socket_ = absl::StrCat(dir, "/batch_client_", getpid(), ".sock");
    unlink(socket_.c_str());
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + socket_,
                             grpc::InsecureServerCredentials());
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ConnectOptions options;
    options.unix_socket = socket_;
    auto c = Client::Connect(options);
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }
  void TearDown() override {
    client_.reset();
    server_->Shutdown();
    unlink(socket_.c_str());
  }
  std::string socket_;
  FakeObjects fake_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(BatchClientTest, CreateBatchSendsEveryEntryAndKeepsResultOrder) {
  std::vector<CreateObjectOptions> entries(3);
  entries[0].size_bytes = 4096;  // placements default to lmem, smem
  entries[1].size_bytes = 8192;  // the fake refuses it
  entries[2].size_bytes = 12288;
  entries[2].placements = {"smem"};
  entries[2].pin = true;
  entries[2].label = "kv";
  auto r = client_->CreateBatch(entries, /*wait=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  {
    absl::MutexLock lock(&fake_.mu_);
    ASSERT_EQ(fake_.create_.entries_size(), 3);
    EXPECT_EQ(fake_.create_.entries(0).placements_size(), 2);
    EXPECT_EQ(fake_.create_.entries(0).placements(0), "lmem");
    EXPECT_EQ(fake_.create_.entries(2).placements(0), "smem");
    EXPECT_TRUE(fake_.create_.entries(2).pin());
    EXPECT_EQ(fake_.create_.entries(2).label(), "kv");
    EXPECT_TRUE(fake_.create_.wait());
  }
  ASSERT_EQ(r->entries.size(), 3u);
  EXPECT_TRUE(r->entries[0].status.ok());
  EXPECT_EQ(r->entries[0].handle, "obj-10");
  ASSERT_TRUE(r->entries[0].object.has_value());
  EXPECT_EQ(r->entries[0].object->size_bytes, 4096u);
  EXPECT_EQ(r->entries[1].status,
            absl::ResourceExhaustedError("no room"));  // code and message
  EXPECT_EQ(r->entries[1].fence_id, 0u);
  EXPECT_FALSE(r->entries[1].object.has_value());
  EXPECT_EQ(r->entries[2].fence_id, 102u);
  EXPECT_EQ(r->succeeded, 2u);
  EXPECT_EQ(r->failed, 1u);
  EXPECT_EQ(r->fence_id, 999u);
  ASSERT_TRUE(r->fence.has_value());
  EXPECT_EQ(r->fence->kind, FenceKind::kArray);
  EXPECT_TRUE(r->fence->signaled());
  ASSERT_TRUE(r->fence->array.has_value());
  EXPECT_EQ(r->fence->array->member_fence_ids,
            (std::vector<uint64_t>{100, 102}));
  EXPECT_EQ(r->fence->array->members, 2u);
  EXPECT_EQ(r->fence->array->blit_ok, 2u);
  EXPECT_EQ(r->fence->array->refused, 1u);
}

TEST_F(BatchClientTest, CreateBatchRefusesANonUtf8LabelBeforeSending) {
  std::vector<CreateObjectOptions> entries(2);
  entries[0].size_bytes = entries[1].size_bytes = 4096;
  entries[1].label = "\xff\xfe";
  auto r = client_->CreateBatch(entries);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("entries[1].label"), std::string::npos);
  absl::MutexLock lock(&fake_.mu_);
  EXPECT_EQ(fake_.create_.entries_size(), 0);  // nothing was sent
}

TEST_F(BatchClientTest, MigrateBatchCarriesPerEntryRegionsAndEntryErrors) {
  std::vector<MigrateBatchEntry> entries = {
      {"obj-1", ""}, {"obj-theirs", ""}, {"obj-3", "smem"}};
  auto r = client_->MigrateBatch(entries, "lmem");
  ASSERT_TRUE(r.ok()) << r.status();
  {
    absl::MutexLock lock(&fake_.mu_);
    EXPECT_EQ(fake_.migrate_.region(), "lmem");
    EXPECT_EQ(fake_.migrate_.entries(0).region(), "");
    EXPECT_EQ(fake_.migrate_.entries(2).region(), "smem");
    EXPECT_FALSE(fake_.migrate_.wait());
  }
  ASSERT_EQ(r->entries.size(), 3u);
  EXPECT_EQ(r->entries[1].status,
            absl::PermissionDeniedError("permission denied"));
  EXPECT_EQ(r->entries[1].handle, "obj-theirs");
  EXPECT_TRUE(r->entries[2].status.ok());
  EXPECT_FALSE(r->fence.has_value());  // did not wait
}

TEST_F(BatchClientTest, DestroyBatchMapsACallErrorToTheStatus) {
  auto r = client_->DestroyBatch({});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  auto ok = client_->DestroyBatch({"obj-1", "obj-2"}, /*wait=*/true);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->succeeded, 2u);
  absl::MutexLock lock(&fake_.mu_);
  EXPECT_EQ(fake_.destroy_.handles_size(), 2);
  EXPECT_TRUE(fake_.destroy_.wait());
}

TEST_F(BatchClientTest, ExecBatchSendsEachCommandKindAndReturnsChecksums) {
  FillOptions fill;
  fill.handle = "obj-1";
  fill.value = 7;
  fill.offset = 16;
  fill.length = 32;
  CopyOptions copy;
  copy.src_handle = "obj-1";
  copy.dst_handle = "obj-2";
  copy.dst_offset = 4096;
  copy.length = 64;
  ChecksumOptions sum;
  sum.handle = "obj-2";
  auto r = client_->ExecBatch({fill, copy, sum});
  ASSERT_TRUE(r.ok()) << r.status();
  {
    absl::MutexLock lock(&fake_.mu_);
    ASSERT_EQ(fake_.exec_.entries_size(), 3);
    EXPECT_EQ(fake_.exec_.entries(0).fill().value(), 7u);
    EXPECT_EQ(fake_.exec_.entries(0).fill().length(), 32u);
    EXPECT_FALSE(fake_.exec_.entries(0).wait());
    EXPECT_EQ(fake_.exec_.entries(1).copy().dst_handle(), "obj-2");
    EXPECT_EQ(fake_.exec_.entries(1).copy().dst_offset(), 4096u);
    EXPECT_EQ(fake_.exec_.entries(2).checksum().handle(), "obj-2");
  }
  ASSERT_EQ(r->entries.size(), 3u);
  EXPECT_FALSE(r->entries[0].checksum.has_value());
  ASSERT_TRUE(r->entries[2].checksum.has_value());
  EXPECT_EQ(*r->entries[2].checksum, 0xabc2u);
  EXPECT_TRUE(r->fence.has_value());  // a Checksum made it wait
}

}  // namespace
}  // namespace gpumig::client
