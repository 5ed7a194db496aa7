// The client library against an in-process fake daemon serving gpumig.v1 on a
// unix socket: what the library adds on top of gRPC (status mapping, chunked
// streaming, paging, deadlines, conversions, Watch cancellation). The real
// daemon is exercised end to end by tests/e2e/cli_e2e_test.sh.

#include "client/gpumig_client.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gpumig/v1/daemon.grpc.pb.h"
#include "gpumig/v1/faults.grpc.pb.h"
#include "gpumig/v1/fences.grpc.pb.h"
#include "gpumig/v1/objects.grpc.pb.h"
#include "gpumig/v1/regions.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace gpumig::client {
namespace {

namespace pb = ::gpumig::v1;

// Blocks until the RPC is cancelled or its deadline passes.
void WaitUntilCancelled(grpc::ServerContext* context) {
  while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(1));
}

// A fake daemon: objects in memory, fences on request, no engine.
class FakeDaemon final : public pb::DaemonService::Service,
                         public pb::ObjectService::Service,
                         public pb::FenceService::Service,
                         public pb::RegionService::Service,
                         public pb::FaultService::Service {
 public:
  grpc::Status Ping(grpc::ServerContext*, const pb::PingRequest*,
                    pb::PingResponse*) override {
    return grpc::Status::OK;
  }

  grpc::Status GetInfo(grpc::ServerContext*, const pb::GetInfoRequest*,
                       pb::GetInfoResponse* r) override {
    r->set_version("fake-1");
    r->set_backend("sim");
    pb::DrmDevice* d = r->add_drm_devices();
    d->set_driver("i915");
    d->set_pci_vendor_id(0x8086);
    r->mutable_caller()->set_name("uid:0");
    r->mutable_caller()->set_is_admin(true);
    r->mutable_limits()->set_max_chunk_bytes(1 << 20);
    return grpc::Status::OK;
  }

  grpc::Status Create(grpc::ServerContext*, const pb::CreateObjectRequest* q,
                      pb::CreateObjectResponse* r) override {
    if (q->size_bytes() == 0 || q->size_bytes() % 4096 != 0) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "size_bytes must be a positive multiple of 4096");
    }
    absl::MutexLock lock(&mu_);
    pb::Object o;
    o.set_handle(absl::StrCat("obj-", ++next_id_));
    o.set_size_bytes(q->size_bytes());
    *o.mutable_placements() = q->placements();
    o.set_region(q->placements(0));
    o.set_label(q->label());
    o.set_pin_count(q->pin() ? 1 : 0);
    o.set_move_fence_id(100 + next_id_);
    *r->mutable_object() = o;
    r->set_fence_id(100 + next_id_);
    objects_[o.handle()] = o;
    order_.push_back(o.handle());
    content_[o.handle()] = std::string(q->size_bytes(), '\0');
    return grpc::Status::OK;
  }

  grpc::Status Get(grpc::ServerContext*, const pb::GetObjectRequest* q,
                   pb::Object* r) override {
    absl::MutexLock lock(&mu_);
    auto it = objects_.find(q->handle());
    if (it == objects_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("no object ", q->handle()));
    }
    *r = it->second;
    return grpc::Status::OK;
  }

  grpc::Status List(grpc::ServerContext*, const pb::ListObjectsRequest* q,
                    pb::ListObjectsResponse* r) override {
    absl::MutexLock lock(&mu_);
    ++list_calls_;
    size_t start = q->page_token().empty() ? 0 : std::stoul(q->page_token());
    size_t page = std::min<size_t>(q->page_size() == 0 ? 100 : q->page_size(),
                                   kFakePageLimit);
    size_t end = std::min(order_.size(), start + page);
    for (size_t i = start; i < end; ++i) {
      *r->add_objects() = objects_[order_[i]];
    }
    if (end < order_.size()) r->set_next_page_token(absl::StrCat(end));
    return grpc::Status::OK;
  }

  grpc::Status Write(grpc::ServerContext*,
                     grpc::ServerReader<pb::WriteRequest>* reader,
                     pb::WriteResponse* r) override {
    pb::WriteRequest q;
    std::string handle;
    uint64_t offset = 0;
    uint64_t written = 0;
    bool first = true;
    while (reader->Read(&q)) {
      absl::MutexLock lock(&mu_);
      if (first) {
        handle = q.handle();
        offset = q.offset();
        if (content_.count(handle) == 0) {
          return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such object");
        }
      } else if (!q.handle().empty() || q.offset() != 0) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "handle/offset in a later message");
      }
      first = false;
      write_chunks_.push_back(q.data().size());
      if (q.data().size() > (1u << 20)) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "chunk > 1MiB");
      }
      std::string& c = content_[handle];
      if (offset + written + q.data().size() > c.size()) {
        return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "past the end");
      }
      c.replace(offset + written, q.data().size(), q.data());
      written += q.data().size();
    }
    r->set_bytes_written(written);
    return grpc::Status::OK;
  }

  grpc::Status Read(grpc::ServerContext* context, const pb::ReadRequest* q,
                    grpc::ServerWriter<pb::ReadResponse>* writer) override {
    std::string c;
    {
      absl::MutexLock lock(&mu_);
      auto it = content_.find(q->handle());
      if (it == content_.end()) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such object");
      }
      c = it->second;
    }
    uint64_t end = q->length() == 0 ? c.size() : q->offset() + q->length();
    if (q->offset() > c.size() || end > c.size()) {
      return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "past the end");
    }
    for (uint64_t at = q->offset(); at < end;) {
      if (context->IsCancelled()) return grpc::Status::CANCELLED;
      uint64_t n = std::min<uint64_t>(end - at, 1 << 20);
      pb::ReadResponse chunk;
      chunk.set_offset(at);
      chunk.set_data(c.substr(at, n));
      if (!writer->Write(chunk)) return grpc::Status::CANCELLED;
      at += n;
    }
    return grpc::Status::OK;
  }

  grpc::Status Migrate(grpc::ServerContext*, const pb::MigrateObjectRequest* q,
                       pb::MigrateObjectResponse* r) override {
    r->set_fence_id(77);
    if (q->wait()) {
      pb::FenceStatus* f = r->mutable_fence();
      f->set_fence_id(77);
      f->set_state(pb::FENCE_STATE_SIGNALED);
      f->set_outcome(pb::FENCE_OUTCOME_FALLBACK_COPY);
      f->set_engine_error_code(13);
      f->set_engine_error_message("injected blit failure");
      f->set_kind(pb::FENCE_KIND_MIGRATE);
      f->set_handle(q->handle());
      f->set_target_region(q->region());
    }
    return grpc::Status::OK;
  }

  grpc::Status Exec(grpc::ServerContext*, const pb::ExecRequest* q,
                    pb::ExecResponse* r) override {
    r->set_fence_id(88);
    if (q->has_checksum()) {
      pb::FenceStatus* f = r->mutable_fence();
      f->set_fence_id(88);
      f->set_state(pb::FENCE_STATE_SIGNALED);
      if (q->checksum().handle() == "obj-broken") {
        f->set_outcome(pb::FENCE_OUTCOME_FAILED);
        f->set_error_code(13);
        f->set_error_message("engine wedged");
      } else {
        f->set_outcome(pb::FENCE_OUTCOME_BLIT_OK);
        r->set_checksum(0);  // a zero hash is still a hash
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status Wait(grpc::ServerContext* context, const pb::WaitFenceRequest* q,
                    pb::FenceStatus* r) override {
    {
      absl::MutexLock lock(&mu_);
      last_wait_timeout_ms_ = q->timeout_ms();
    }
    if (q->fence_id() == 999) {  // never signals
      WaitUntilCancelled(context);
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "not yet");
    }
    r->set_fence_id(q->fence_id());
    r->set_state(pb::FENCE_STATE_SIGNALED);
    r->set_outcome(pb::FENCE_OUTCOME_UNKNOWN_STATE);
    r->set_error_code(13);  // INTERNAL: the engine's error
    r->set_error_message("outside the aperture");
    return grpc::Status::OK;
  }

  grpc::Status Watch(grpc::ServerContext* context, const pb::WatchRequest* q,
                     grpc::ServerWriter<pb::Event>* writer) override {
    {
      absl::MutexLock lock(&mu_);
      last_watch_ = *q;
    }
    for (uint64_t i = 1; i <= 3; ++i) {
      pb::Event e;
      e.set_event_seqno(i);
      e.set_kind(i == 3 ? pb::EVENT_KIND_DROPPED : pb::EVENT_KIND_BLIT_OK);
      if (i < 3) e.mutable_fence()->set_fence_id(i);
      e.set_dropped_events(i == 3 ? 5 : 0);
      if (!writer->Write(e)) return grpc::Status::CANCELLED;
    }
    if (q->handle() == "obj-gone") return grpc::Status::OK;  // stream ends
    WaitUntilCancelled(context);
    return grpc::Status::CANCELLED;
  }

  grpc::Status Evict(grpc::ServerContext*, const pb::EvictRegionRequest* q,
                     pb::EvictRegionResponse* r) override {
    if (q->name() != "lmem") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no region");
    }
    r->set_objects_evicted(2);
    r->set_last_fence_id(5);
    return grpc::Status::OK;
  }

  grpc::Status Inject(grpc::ServerContext*, const pb::InjectFaultRequest* q,
                      pb::Fault* r) override {
    r->set_id(1);
    *r->mutable_spec() = q->spec();
    if (q->spec().trigger().has_probability() &&
        q->spec().trigger().probability().seed() == 0) {
      r->mutable_spec()->mutable_trigger()->mutable_probability()->set_seed(42);
    }
    return grpc::Status::OK;
  }

  grpc::Status Clear(grpc::ServerContext*, const pb::ClearFaultsRequest* q,
                     pb::ClearFaultsResponse* r) override {
    absl::MutexLock lock(&mu_);
    last_clear_ = *q;
    r->set_cleared(q->all() ? 3 : 1);
    return grpc::Status::OK;
  }

  static constexpr size_t kFakePageLimit = 1000;

  absl::Mutex mu_;
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, pb::Object> objects_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> content_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> order_ ABSL_GUARDED_BY(mu_);
  int list_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<size_t> write_chunks_ ABSL_GUARDED_BY(mu_);
  uint32_t last_wait_timeout_ms_ ABSL_GUARDED_BY(mu_) = 0;
  pb::WatchRequest last_watch_ ABSL_GUARDED_BY(mu_);
  pb::ClearFaultsRequest last_clear_ ABSL_GUARDED_BY(mu_);
};

std::string SocketPath(absl::string_view name) {
  std::string dir = ::testing::TempDir();
  std::string path = absl::StrCat(dir, name, ".", getpid(), ".sock");
  // sun_path holds 108 bytes; Bazel's TEST_TMPDIR can be longer.
  if (path.size() > 100) {
    path = absl::StrCat("/tmp/", name, ".", getpid(), ".sock");
  }
  unlink(path.c_str());
  return path;
}

CreateObjectOptions Sized(uint64_t size) {
  CreateObjectOptions options;
  options.size_bytes = size;
  return options;
}

CallOptions Timeout(absl::Duration timeout) {
  CallOptions call;
  call.timeout = timeout;
  return call;
}

WatchOptions WatchHandle(std::string handle) {
  WatchOptions options;
  options.handle = std::move(handle);
  return options;
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    socket_ = SocketPath("gpumig_client_test");
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat("unix:", socket_),
                             grpc::InsecureServerCredentials());
    builder.RegisterService(static_cast<pb::DaemonService::Service*>(&fake_));
    builder.RegisterService(static_cast<pb::ObjectService::Service*>(&fake_));
    builder.RegisterService(static_cast<pb::FenceService::Service*>(&fake_));
    builder.RegisterService(static_cast<pb::RegionService::Service*>(&fake_));
    builder.RegisterService(static_cast<pb::FaultService::Service*>(&fake_));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ConnectOptions options;
    options.unix_socket = socket_;
    auto client = Client::Connect(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  void TearDown() override {
    client_.reset();
    if (server_ != nullptr) server_->Shutdown();
    unlink(socket_.c_str());
  }

  std::string socket_;
  FakeDaemon fake_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Client> client_;
};

TEST(ConnectTest, MissingDaemonIsUnavailable) {
  ConnectOptions options;
  options.unix_socket = SocketPath("gpumig_client_test_nobody");
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->target(), absl::StrCat("unix:", options.unix_socket));
  EXPECT_EQ((*client)->Ping().code(), absl::StatusCode::kUnavailable);
}

TEST(ConnectTest, RejectsContradictoryOptions) {
  ConnectOptions both;
  both.unix_socket = "/tmp/x.sock";
  both.tcp_target = "localhost:1";
  EXPECT_EQ(Client::Connect(both).status().code(),
            absl::StatusCode::kInvalidArgument);

  ConnectOptions tls_without_target;
  tls_without_target.tls_root_ca_file = "/tmp/ca.pem";
  EXPECT_EQ(Client::Connect(tls_without_target).status().code(),
            absl::StatusCode::kInvalidArgument);

  ConnectOptions cert_without_key;
  cert_without_key.tcp_target = "localhost:1";
  cert_without_key.tls_cert_file = "/tmp/cert.pem";
  EXPECT_EQ(Client::Connect(cert_without_key).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ConnectTest, MissingTlsFileIsNotFound) {
  ConnectOptions options;
  options.tcp_target = "localhost:1";
  options.tls_root_ca_file = "/nonexistent/gpumig-ca.pem";
  auto client = Client::Connect(options);
  EXPECT_EQ(client.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(client.status().message().find("/nonexistent/gpumig-ca.pem"),
            std::string::npos);
}

TEST(ConnectTest, DefaultSocketHonoursEnvironment) {
  setenv("GPUMIG_SOCKET", "/tmp/elsewhere.sock", 1);
  EXPECT_EQ(DefaultSocketPath(), "/tmp/elsewhere.sock");
  setenv("GPUMIG_SOCKET", "", 1);
  EXPECT_EQ(DefaultSocketPath(), "/run/gpumig/gpumig.sock");
  unsetenv("GPUMIG_SOCKET");
  EXPECT_EQ(DefaultSocketPath(), "/run/gpumig/gpumig.sock");
}

TEST_F(ClientTest, PingAndInfo) {
  EXPECT_TRUE(client_->Ping().ok());
  auto info = client_->GetInfo();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->version, "fake-1");
  ASSERT_EQ(info->drm_devices.size(), 1u);
  EXPECT_EQ(info->drm_devices[0].driver, "i915");
  EXPECT_EQ(info->drm_devices[0].pci_vendor_id, 0x8086u);
  EXPECT_TRUE(info->caller.is_admin);
  EXPECT_EQ(info->limits.max_chunk_bytes, 1u << 20);
}

TEST_F(ClientTest, ErrorKeepsCodeAndMessage) {
  auto o = client_->GetObject("obj-404");
  EXPECT_EQ(o.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(o.status().message(), "no object obj-404");
  auto bad = client_->CreateObject(Sized(100));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ClientTest, UnimplementedMethodMapsToUnimplemented) {
  // The fake does not implement GetStats.
  EXPECT_EQ(client_->GetStats().status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST_F(ClientTest, CreateDefaultsPlacementsAndConvertsObject) {
  CreateObjectOptions options = Sized(8192);
  options.pin = true;
  options.label = "weights";
  auto created = client_->CreateObject(options);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->object.handle, "obj-1");
  EXPECT_EQ(created->object.placements,
            (std::vector<std::string>{"lmem", "smem"}));
  EXPECT_EQ(created->object.region, "lmem");
  EXPECT_EQ(created->object.pin_count, 1u);
  EXPECT_EQ(created->object.label, "weights");
  EXPECT_EQ(created->fence_id, 101u);
}

TEST_F(ClientTest, CreateRefusesALabelThatIsNotUtf8BeforeSending) {
  CreateObjectOptions options = Sized(4096);
  options.label = "bad\xff";
  auto created = client_->CreateObject(options);
  ASSERT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(created.status().message(), "label: not valid UTF-8");
  // Nothing reached the daemon: the next object is still the first.
  auto next = client_->CreateObject(Sized(4096));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->object.handle, "obj-1");
}

TEST_F(ClientTest, ListObjectsFollowsEveryPage) {
  for (int i = 0; i < 2345; ++i) {
    ASSERT_TRUE(client_->CreateObject(Sized(4096)).ok());
  }
  auto objects = client_->ListObjects();
  ASSERT_TRUE(objects.ok()) << objects.status();
  ASSERT_EQ(objects->size(), 2345u);
  EXPECT_EQ(objects->front().handle, "obj-1");
  EXPECT_EQ(objects->back().handle, "obj-2345");
  absl::MutexLock lock(&fake_.mu_);
  EXPECT_EQ(fake_.list_calls_, 3);
}

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed;
  for (char& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

TEST_F(ClientTest, WriteStreamsChunksOfAtMostOneMiB) {
  const size_t size = 4 << 20;
  auto created = client_->CreateObject(Sized(size));
  ASSERT_TRUE(created.ok());
  const std::string data = Pattern(3 * (1 << 20) + 12345, 7);
  auto n = client_->Write(
      created->object.handle,
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(data.data()),
                          data.size()),
      4096);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, data.size());
  {
    absl::MutexLock lock(&fake_.mu_);
    EXPECT_EQ(fake_.write_chunks_,
              (std::vector<size_t>{1 << 20, 1 << 20, 1 << 20, 12345}));
  }
  auto back = client_->Read(created->object.handle, 4096, data.size());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(std::string(back->begin(), back->end()) == data);
}

TEST_F(ClientTest, EmptyWriteStillNamesTheObject) {
  auto n = client_->Write("obj-404", absl::Span<const uint8_t>());
  EXPECT_EQ(n.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ClientTest, WriteFromStreamAndFd) {
  auto created = client_->CreateObject(Sized(2 << 20));
  ASSERT_TRUE(created.ok());
  const std::string data = Pattern((1 << 20) + 3, 9);
  std::istringstream in(data);
  auto n = client_->Write(created->object.handle, in);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, data.size());

  // A pipe delivers in small pieces; the library still sends full chunks.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const std::string piped = Pattern(1536 * 1024, 11);
  std::thread writer([&] {
    size_t at = 0;
    while (at < piped.size()) {
      ssize_t w = write(fds[1], piped.data() + at,
                        std::min<size_t>(piped.size() - at, 4096));
      ASSERT_GT(w, 0);
      at += static_cast<size_t>(w);
    }
    close(fds[1]);
  });
  auto m = client_->WriteFromFd(created->object.handle, fds[0], 4096);
  writer.join();
  close(fds[0]);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(*m, piped.size());
  {
    absl::MutexLock lock(&fake_.mu_);
    ASSERT_GE(fake_.write_chunks_.size(), 2u);
    EXPECT_EQ(fake_.write_chunks_[fake_.write_chunks_.size() - 2], 1u << 20);
    EXPECT_EQ(fake_.write_chunks_.back(), 512u * 1024);
  }
  std::ostringstream out;
  auto r = client_->Read(created->object.handle, out, 4096, piped.size());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(out.str(), piped);
}

TEST_F(ClientTest, WriteErrorsComeFromTheDaemon) {
  auto created = client_->CreateObject(Sized(4096));
  ASSERT_TRUE(created.ok());
  const std::string data(8192, 'x');
  auto n = client_->Write(
      created->object.handle,
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(data.data()),
                          data.size()));
  EXPECT_EQ(n.status().code(), absl::StatusCode::kOutOfRange);
}

TEST_F(ClientTest, ReadWholeObjectToFd) {
  const size_t size = (5 << 20) + 4096;
  auto created = client_->CreateObject(Sized(size));
  ASSERT_TRUE(created.ok());
  const std::string data = Pattern(size, 3);
  ASSERT_TRUE(client_
                  ->Write(created->object.handle,
                          absl::MakeConstSpan(
                              reinterpret_cast<const uint8_t*>(data.data()),
                              data.size()))
                  .ok());
  std::string path = absl::StrCat(::testing::TempDir(), "/read_to_fd.bin");
  FILE* f = fopen(path.c_str(), "w+b");
  ASSERT_NE(f, nullptr);
  auto n = client_->ReadToFd(created->object.handle, fileno(f));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, size);
  std::string back(size, '\0');
  rewind(f);
  ASSERT_EQ(fread(back.data(), 1, size, f), size);
  fclose(f);
  EXPECT_EQ(back, data);
}

TEST_F(ClientTest, SinkErrorCancelsTheRead) {
  auto created = client_->CreateObject(Sized(4 << 20));
  ASSERT_TRUE(created.ok());
  int chunks = 0;
  auto n = client_->ReadChunks(
      created->object.handle, 0, 0, [&](absl::Span<const uint8_t>) {
        ++chunks;
        return absl::ResourceExhaustedError("disk full");
      });
  EXPECT_EQ(n.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(n.status().message(), "disk full");
  EXPECT_EQ(chunks, 1);
}

TEST_F(ClientTest, MigrateWithWaitConvertsTheFence) {
  auto r = client_->Migrate("obj-1", "smem", /*wait=*/true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->fence_id, 77u);
  ASSERT_TRUE(r->fence.has_value());
  EXPECT_TRUE(r->fence->signaled());
  EXPECT_EQ(r->fence->outcome, FenceOutcome::kFallbackCopy);
  EXPECT_TRUE(r->fence->error.ok());
  EXPECT_EQ(r->fence->engine_error.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(r->fence->engine_error.message(), "injected blit failure");
  EXPECT_EQ(r->fence->kind, FenceKind::kMigrate);

  auto no_wait = client_->Migrate("obj-1", "smem");
  ASSERT_TRUE(no_wait.ok());
  EXPECT_FALSE(no_wait->fence.has_value());
}

TEST_F(ClientTest, ChecksumIsOptional) {
  ChecksumOptions options;
  options.handle = "obj-1";
  auto ok = client_->ExecChecksum(options);
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_TRUE(ok->checksum.has_value());
  EXPECT_EQ(*ok->checksum, 0u);
  options.handle = "obj-broken";
  auto failed = client_->ExecChecksum(options);
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_FALSE(failed->checksum.has_value());
  EXPECT_EQ(failed->fence.outcome, FenceOutcome::kFailed);
  EXPECT_EQ(failed->fence.error.code(), absl::StatusCode::kInternal);
}

TEST_F(ClientTest, WaitFenceRoundsTimeoutUpAndHonoursIt) {
  auto f = client_->WaitFence(5, absl::Microseconds(1500));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->outcome, FenceOutcome::kUnknownState);
  {
    absl::MutexLock lock(&fake_.mu_);
    EXPECT_EQ(fake_.last_wait_timeout_ms_, 2u);
  }
  // The daemon never answers fence 999: the call's deadline ends it.
  absl::Time start = absl::Now();
  auto never = client_->WaitFence(999, absl::InfiniteDuration(),
                                  Timeout(absl::Milliseconds(200)));
  EXPECT_EQ(never.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  absl::MutexLock lock(&fake_.mu_);
  EXPECT_EQ(fake_.last_wait_timeout_ms_, 0u);
}

TEST_F(ClientTest, WatchStopsWhenCallbackSaysSo) {
  std::vector<WatchEvent> events;
  WatchOptions options = WatchHandle("obj-1");
  options.kinds = {EventKind::kBlitOk, EventKind::kFallbackTaken};
  absl::Status s = client_->Watch(options, [&](const WatchEvent& e) {
    events.push_back(e);
    return events.size() < 3;
  });
  EXPECT_TRUE(s.ok()) << s;
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kind, EventKind::kBlitOk);
  ASSERT_TRUE(events[0].fence.has_value());
  EXPECT_EQ(events[0].fence->fence_id, 1u);
  EXPECT_EQ(events[2].kind, EventKind::kDropped);
  EXPECT_FALSE(events[2].fence.has_value());
  EXPECT_EQ(events[2].dropped_events, 5u);
  absl::MutexLock lock(&fake_.mu_);
  EXPECT_EQ(fake_.last_watch_.handle(), "obj-1");
  ASSERT_EQ(fake_.last_watch_.kinds_size(), 2);
  EXPECT_EQ(fake_.last_watch_.kinds(1), pb::EVENT_KIND_FALLBACK_TAKEN);
}

TEST_F(ClientTest, WatchEndsOkWhenTheDaemonEndsTheStream) {
  int n = 0;
  absl::Status s = client_->Watch(WatchHandle("obj-gone"),
                                  [&](const WatchEvent&) { return ++n > 0; });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(n, 3);
}

TEST_F(ClientTest, WatchIsCancelledFromAnotherThread) {
  WatchCanceller canceller;
  absl::Notification third_event;
  int n = 0;
  std::thread cancel([&] {
    third_event.WaitForNotification();
    canceller.Cancel();
  });
  absl::Status s = client_->Watch(
      {},
      [&](const WatchEvent&) {
        if (++n == 3) third_event.Notify();
        return true;
      },
      &canceller);
  cancel.join();
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(n, 3);
  EXPECT_TRUE(canceller.cancelled());
}

TEST_F(ClientTest, WatchCancelledBeforehandReturnsAtOnce) {
  WatchCanceller canceller;
  canceller.Cancel();
  int n = 0;
  absl::Status s = client_->Watch(
      {}, [&](const WatchEvent&) { return ++n > 0; }, &canceller);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(n, 0);
}

TEST_F(ClientTest, WatchDeadlineIsDeadlineExceeded) {
  int n = 0;
  absl::Status s = client_->Watch(
      {}, [&](const WatchEvent&) { return ++n > 0; }, nullptr,
      Timeout(absl::Milliseconds(200)));
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(n, 3);
}

TEST_F(ClientTest, EvictAndFaults) {
  auto evicted = client_->EvictRegion("lmem", true);
  ASSERT_TRUE(evicted.ok()) << evicted.status();
  EXPECT_EQ(evicted->objects_evicted, 2u);
  EXPECT_EQ(evicted->last_fence_id, 5u);
  EXPECT_EQ(client_->EvictRegion("vram").status().code(),
            absl::StatusCode::kNotFound);

  FaultSpec spec;
  spec.kind = FaultKind::kFailBlit;
  spec.probability = 0.5;
  spec.region = "lmem";
  spec.op = FenceKind::kMigrate;
  auto fault = client_->InjectFault(spec);
  ASSERT_TRUE(fault.ok()) << fault.status();
  EXPECT_EQ(fault->spec.kind, FaultKind::kFailBlit);
  ASSERT_TRUE(fault->spec.probability.has_value());
  EXPECT_EQ(*fault->spec.probability, 0.5);
  EXPECT_EQ(fault->spec.seed, 42u);
  EXPECT_EQ(fault->spec.op, FenceKind::kMigrate);

  auto all = client_->ClearFaults(0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, 3u);
  {
    absl::MutexLock lock(&fake_.mu_);
    EXPECT_TRUE(fake_.last_clear_.all());
  }
  auto one = client_->ClearFaults(7);
  ASSERT_TRUE(one.ok());
  absl::MutexLock lock(&fake_.mu_);
  EXPECT_EQ(fake_.last_clear_.id(), 7u);
}

TEST(NamesTest, ParseAndPrintRoundTrip) {
  EXPECT_EQ(*ParseFaultKind("fail_blit"), FaultKind::kFailBlit);
  EXPECT_EQ(*ParseFaultKind("FAIL-WORK-ALLOCATION"),
            FaultKind::kFailWorkAllocation);
  EXPECT_EQ(ParseFaultKind("explode").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseFenceKind("copy"), FenceKind::kMigrate);
  EXPECT_EQ(*ParseFenceKind("evict"), FenceKind::kEvict);
  EXPECT_EQ(*ParseEventKind("fallback_taken"), EventKind::kFallbackTaken);
  EXPECT_STREQ(FenceOutcomeName(FenceOutcome::kFallbackCopy), "FALLBACK_COPY");
  EXPECT_STREQ(FaultKindName(FaultKind::kEngineLatency), "ENGINE_LATENCY");
}

}  // namespace
}  // namespace gpumig::client
