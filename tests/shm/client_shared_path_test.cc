// The client library's automatic shared-buffer path: Write/Read of large
// ranges on a unix socket go through WriteFromBuffer/ReadToBuffer on a
// buffer the client registers itself, with exact content; small ranges,
// use_shared_buffers = false and a daemon without a registration socket use
// the streams. The daemon is a fake gRPC service over core/shm's real
// registration server and registry.
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "client/gpumig_client.h"
#include "core/shm/registration_server.h"
#include "core/shm/shared_buffer_registry.h"
#include "gpumig/v1/daemon.grpc.pb.h"
#include "gpumig/v1/objects.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

namespace pb = ::gpumig::v1;

struct Store {
  absl::Mutex mu;
  std::string object ABSL_GUARDED_BY(mu);  // the one object, handle "o"
  int stream_writes ABSL_GUARDED_BY(mu) = 0;
  int stream_reads ABSL_GUARDED_BY(mu) = 0;
  int shm_writes ABSL_GUARDED_BY(mu) = 0;
  int shm_reads ABSL_GUARDED_BY(mu) = 0;
};

class FakeDaemon final : public pb::DaemonService::Service {
 public:
  explicit FakeDaemon(std::string socket) : socket_(std::move(socket)) {}
  grpc::Status GetInfo(grpc::ServerContext*, const pb::GetInfoRequest*,
                       pb::GetInfoResponse* r) override {
    r->set_shared_buffer_socket(socket_);
    return grpc::Status::OK;
  }
  std::string socket_;
};

class FakeObjects final : public pb::ObjectService::Service {
 public:
  FakeObjects(Store* s, shm::SharedBufferRegistry* reg) : s_(s), reg_(reg) {}
  grpc::Status Get(grpc::ServerContext*, const pb::GetObjectRequest*,
                   pb::Object* r) override {
    absl::MutexLock l(&s_->mu);
    r->set_handle("o");
    r->set_size_bytes(s_->object.size());
    return grpc::Status::OK;
  }
  grpc::Status Write(grpc::ServerContext*,
                     grpc::ServerReader<pb::WriteRequest>* reader,
                     pb::WriteResponse* r) override {
    pb::WriteRequest m;
    uint64_t at = 0, n = 0;
    bool first = true;
    absl::MutexLock l(&s_->mu);
    ++s_->stream_writes;
    while (reader->Read(&m)) {
      if (first) at = m.offset();
      first = false;
      if (at + n + m.data().size() > s_->object.size()) {
        return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "range");
      }
      s_->object.replace(at + n, m.data().size(), m.data());
      n += m.data().size();
    }
    r->set_bytes_written(n);
    return grpc::Status::OK;
  }
  grpc::Status Read(grpc::ServerContext*, const pb::ReadRequest* q,
                    grpc::ServerWriter<pb::ReadResponse>* w) override {
    absl::MutexLock l(&s_->mu);
    ++s_->stream_reads;
    uint64_t len = q->length() ? q->length() : s_->object.size() - q->offset();
    for (uint64_t done = 0; done < len;) {
      uint64_t piece = std::min<uint64_t>(len - done, 1 << 20);
      pb::ReadResponse m;
      m.set_offset(q->offset() + done);
      m.set_data(s_->object.substr(q->offset() + done, piece));
      w->Write(m);
      done += piece;
    }
    return grpc::Status::OK;
  }
  grpc::Status WriteFromBuffer(grpc::ServerContext*,
                               const pb::WriteFromBufferRequest* q,
                               pb::WriteFromBufferResponse* r) override {
    absl::StatusOr<shm::BufferRef> b = reg_->Acquire(getuid(), q->buffer_id());
    if (!b.ok()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "buffer");
    absl::MutexLock l(&s_->mu);
    ++s_->shm_writes;
    if (q->buffer_offset() + q->length() > b->size() ||
        q->offset() + q->length() > s_->object.size()) {
      return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "range");
    }
    std::memcpy(&s_->object[q->offset()], b->data() + q->buffer_offset(),
                q->length());
    r->set_bytes_written(q->length());
    return grpc::Status::OK;
  }
  grpc::Status ReadToBuffer(grpc::ServerContext*,
                            const pb::ReadToBufferRequest* q,
                            pb::ReadToBufferResponse* r) override {
    absl::StatusOr<shm::BufferRef> b = reg_->Acquire(getuid(), q->buffer_id());
    if (!b.ok()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "buffer");
    absl::MutexLock l(&s_->mu);
    ++s_->shm_reads;
    if (q->buffer_offset() + q->length() > b->size() ||
        q->offset() + q->length() > s_->object.size()) {
      return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "range");
    }
    std::memcpy(b->data() + q->buffer_offset(), &s_->object[q->offset()],
                q->length());
    r->set_bytes_read(q->length());
    return grpc::Status::OK;
  }
  Store* s_;
  shm::SharedBufferRegistry* reg_;
};

class SharedPathTest : public ::testing::Test {
 protected:
  void Start(bool with_socket) {
    char dir[] = "/tmp/gpumig-sharedpath-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    grpc_path_ = dir_ + "/gpumig.sock";
    std::string shm_path = dir_ + "/gpumig-shm.sock";
    ASSERT_TRUE(server_.Start(shm_path, 0600, -1).ok());
    daemon_ = std::make_unique<FakeDaemon>(with_socket ? shm_path : "");
    objects_ = std::make_unique<FakeObjects>(&store_, &registry_);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + grpc_path_,
                             grpc::InsecureServerCredentials());
    builder.RegisterService(daemon_.get());
    builder.RegisterService(objects_.get());
    grpc_ = builder.BuildAndStart();
    ASSERT_NE(grpc_, nullptr);
  }
  void TearDown() override {
    if (grpc_) grpc_->Shutdown();
    server_.Stop();
    unlink(grpc_path_.c_str());
    rmdir(dir_.c_str());
  }
  std::unique_ptr<client::Client> Connect(bool shm) {
    client::ConnectOptions o;
    o.unix_socket = grpc_path_;
    o.use_shared_buffers = shm;
    auto c = client::Client::Connect(o);
    EXPECT_TRUE(c.ok());
    return *std::move(c);
  }
  // The fake object's content: `n` bytes `c`.
  void SetObject(size_t n, char c) {
    absl::MutexLock l(&store_.mu);
    store_.object.assign(n, c);
  }
  static std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 131 + seed);
    return v;
  }

  Store store_;
  shm::SharedBufferRegistry registry_{shm::ShmLimits{}};
  shm::RegistrationServer server_{&registry_};
  std::unique_ptr<FakeDaemon> daemon_;
  std::unique_ptr<FakeObjects> objects_;
  std::unique_ptr<grpc::Server> grpc_;
  std::string dir_, grpc_path_;
};

TEST_F(SharedPathTest, LargeWriteAndReadGoThroughSharedBuffersExactly) {
  Start(true);
  // 40 MiB + 4 KiB: three pieces of the 16 MiB buffer, the last partial.
  const size_t n = (40 << 20) + 4096;
  SetObject(n + 8192, '\0');
  auto c = Connect(true);
  std::vector<uint8_t> data = Pattern(n, 3);
  absl::StatusOr<uint64_t> w = c->Write("o", data, 4096);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(*w, n);
  absl::StatusOr<std::vector<uint8_t>> r = c->Read("o", 4096, n);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(*r == data);
  // Length 0: to the end, sized by GetObject.
  absl::StatusOr<std::vector<uint8_t>> all = c->Read("o");
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), n + 8192);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), all->begin() + 4096));
  absl::MutexLock l(&store_.mu);
  EXPECT_EQ(store_.stream_writes, 0);
  EXPECT_EQ(store_.stream_reads, 0);
  EXPECT_EQ(store_.shm_writes, 3);
  EXPECT_EQ(store_.shm_reads, 3 + 3);
  // One buffer, registered once and cached.
  EXPECT_EQ(registry_.stats().registrations, 1u);
}

TEST_F(SharedPathTest, SmallRangesAndNoShmUseStreams) {
  Start(true);
  SetObject(1 << 20, '\0');
  auto c = Connect(true);
  std::vector<uint8_t> small = Pattern(4096, 9);
  ASSERT_TRUE(c->Write("o", small).ok());
  auto r = c->Read("o", 0, 4096);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r == small);
  auto off = Connect(false);
  std::vector<uint8_t> big = Pattern(1 << 20, 1);
  ASSERT_TRUE(off->Write("o", big).ok());
  auto back = off->Read("o", 0, 1 << 20);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(*back == big);
  absl::MutexLock l(&store_.mu);
  EXPECT_EQ(store_.shm_writes + store_.shm_reads, 0);
  EXPECT_EQ(store_.stream_writes, 2);
  EXPECT_EQ(registry_.stats().registrations, 0u);
}

TEST_F(SharedPathTest, DaemonWithoutSocketFallsBackToStreams) {
  Start(false);
  SetObject(2 << 20, '\0');
  auto c = Connect(true);
  std::vector<uint8_t> big = Pattern(2 << 20, 5);
  auto w = c->Write("o", big);
  ASSERT_TRUE(w.ok()) << w.status();
  auto back = c->Read("o", 0, 2 << 20);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(*back == big);
  absl::MutexLock l(&store_.mu);
  EXPECT_EQ(store_.shm_writes + store_.shm_reads, 0);
  EXPECT_EQ(store_.stream_writes, 1);
  EXPECT_EQ(store_.stream_reads, 1);
}

TEST_F(SharedPathTest, ClientDestructionUnregistersItsCachedBuffers) {
  Start(true);
  SetObject(1 << 20, '\0');
  {
    auto c = Connect(true);
    ASSERT_TRUE(c->Write("o", Pattern(1 << 20, 2)).ok());
    EXPECT_EQ(registry_.stats().buffers, 1u);
  }
  EXPECT_EQ(registry_.stats().buffers, 0u);
  EXPECT_EQ(registry_.stats().unregistrations, 1u);
}

}  // namespace
}  // namespace gpumig
