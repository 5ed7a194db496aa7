// End-to-end tests of shared buffers: the real gpumigd, its registration
// socket (raw protocol, //core/shm:test_registrar) and
// ObjectService.WriteFromBuffer / ReadToBuffer through the gRPC stubs.
#include <fcntl.h>
#include <grp.h>
#include <linux/falloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/shm/test_registrar.h"
#include "gmock/gmock.h"
#include "gpumig/v1/daemon.grpc.pb.h"
#include "gpumig/v1/faults.grpc.pb.h"
#include "gpumig/v1/fences.grpc.pb.h"
#include "gpumig/v1/objects.grpc.pb.h"
#include "gpumig/v1/regions.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_harness.h"

namespace gpumig {
namespace {

namespace v1 = ::gpumig::v1;
using ::testing::HasSubstr;

using e2e::CanConnect;
using e2e::CreateObject;
using e2e::Ctx;
using e2e::Daemon;
using e2e::DaemonBinary;
using e2e::kMiB;
using e2e::Pattern;
using e2e::ReadAll;
using e2e::ReadObject;
using e2e::Stubs;
using e2e::TempDir;
using e2e::TestConfig;
using e2e::WriteFile;

constexpr uint64_t kPage = 4096;

// A registered buffer: the client's fd and mapping, the daemon's id.
struct Buf {
  int fd = -1;
  uint8_t* p = nullptr;
  uint64_t size = 0;
  uint64_t id = 0;
};

class ShmE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(daemon_.Start({TestConfig()}));
    stubs_ = std::make_unique<Stubs>(daemon_.Channel());
    v1::GetInfoResponse info;
    ASSERT_TRUE(stubs_->daemon->GetInfo(Ctx().get(), {}, &info).ok());
    shm_path_ = info.shared_buffer_socket();
    ASSERT_EQ(shm_path_, dir_.File("gpumig-shm.sock"));
    sock_ = shm::ConnectRegistration(shm_path_);
    ASSERT_GE(sock_, 0);
  }
  void TearDown() override {
    if (sock_ >= 0) close(sock_);
  }
  Buf Register(uint64_t size) {
    Buf b;
    b.size = size;
    b.fd = shm::MakeMemfd(size, shm::kGoodSeals);
    b.p = static_cast<uint8_t*>(
        mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, b.fd, 0));
    shm::ShmRequest r;
    r.op = shm::kOpRegister;
    r.size = size;
    EXPECT_TRUE(shm::SendRequest(sock_, r, {b.fd}));
    shm::ShmReply rep;
    EXPECT_TRUE(shm::RecvReply(sock_, &rep));
    EXPECT_EQ(rep.error, 0u) << rep.message;
    b.id = rep.buffer_id;
    return b;
  }
  std::string NewObject(uint64_t size, const std::string& region) {
    v1::CreateObjectResponse resp;
    EXPECT_TRUE(CreateObject(*stubs_, size, {region}, &resp).ok());
    return resp.object().handle();
  }
  grpc::Status WriteFrom(const std::string& h, uint64_t off, uint64_t id,
                         uint64_t boff, uint64_t len) {
    v1::WriteFromBufferRequest req;
    req.set_handle(h);
    req.set_offset(off);
    req.set_buffer_id(id);
    req.set_buffer_offset(boff);
    req.set_length(len);
    v1::WriteFromBufferResponse resp;
    return stubs_->objects->WriteFromBuffer(Ctx().get(), req, &resp);
  }
  grpc::Status ReadTo(const std::string& h, uint64_t off, uint64_t id,
                      uint64_t boff, uint64_t len) {
    v1::ReadToBufferRequest req;
    req.set_handle(h);
    req.set_offset(off);
    req.set_buffer_id(id);
    req.set_buffer_offset(boff);
    req.set_length(len);
    v1::ReadToBufferResponse resp;
    return stubs_->objects->ReadToBuffer(Ctx().get(), req, &resp);
  }
  v1::SharedBufferStats Stats() {
    v1::GetStatsResponse s;
    EXPECT_TRUE(stubs_->daemon->GetStats(Ctx().get(), {}, &s).ok());
    return s.shared_buffers();
  }

  TempDir dir_;
  Daemon daemon_{dir_};
  std::unique_ptr<Stubs> stubs_;
  std::string shm_path_;
  int sock_ = -1;
};

TEST_F(ShmE2eTest,
       WriteFromBufferAndReadToBufferRoundTripInsideAndOutsideAperture) {
  Buf b = Register(8 * kMiB);
  const std::string data = Pattern(3 * kMiB, 9);
  std::memcpy(b.p, data.data(), data.size());
  for (const char* region : {"lmem", "smem"}) {
    // lmem: 16 MiB with a 4 MiB aperture; offset 5 MiB is outside it.
    const std::string h = NewObject(10 * kMiB, region);
    ASSERT_TRUE(WriteFrom(h, 5 * kMiB, b.id, 0, data.size()).ok());
    std::string back;
    ASSERT_TRUE(ReadObject(*stubs_, h, 5 * kMiB, data.size(), &back).ok());
    EXPECT_TRUE(back == data) << region;
    std::memset(b.p + 4 * kMiB, 0, 4 * kMiB);
    ASSERT_TRUE(ReadTo(h, 5 * kMiB, b.id, 4 * kMiB, data.size()).ok());
    EXPECT_EQ(std::memcmp(b.p + 4 * kMiB, data.data(), data.size()), 0)
        << region;
  }
  v1::SharedBufferStats s = Stats();
  EXPECT_TRUE(s.enabled());
  EXPECT_EQ(s.buffers(), 1u);
  EXPECT_EQ(s.bytes(), 8 * kMiB);
  EXPECT_EQ(s.bytes_written(), 2 * data.size());
  EXPECT_EQ(s.bytes_read(), 2 * data.size());
  EXPECT_EQ(s.max_buffers_per_principal(), 64u);
}

TEST_F(ShmE2eTest, RangesAreCheckedOnBothSidesWithoutOverflow) {
  Buf b = Register(kMiB);
  const std::string h = NewObject(2 * kMiB, "smem");
  const uint64_t kMax = ~uint64_t{0};
  EXPECT_EQ(WriteFrom(h, 0, b.id, kMiB - 4096, 8192).error_code(),
            grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(WriteFrom(h, 2 * kMiB - 10, b.id, 0, 11).error_code(),
            grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(WriteFrom(h, 1, b.id, 0, kMax).error_code(),
            grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(ReadTo(h, 0, b.id, kMax, 2).error_code(),
            grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(ReadTo(h, kMax, b.id, 0, 2).error_code(),
            grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_TRUE(WriteFrom(h, 2 * kMiB, b.id, kMiB, 0).ok());  // empty at the ends
  EXPECT_EQ(WriteFrom(h, 0, 0, 0, 1).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(WriteFrom("nonsense", 0, b.id, 0, 1).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ShmE2eTest, EndedOrUnknownBufferIsNotFoundAndAccountingReturnsToZero) {
  const std::string h = NewObject(kMiB, "smem");
  Buf b = Register(kMiB);
  EXPECT_EQ(WriteFrom(h, 0, b.id + 1000, 0, 1).error_code(),
            grpc::StatusCode::NOT_FOUND);
  shm::ShmRequest r;
  r.op = shm::kOpUnregister;
  r.buffer_id = b.id;
  ASSERT_TRUE(shm::SendRequest(sock_, r, {}));
  shm::ShmReply rep;
  ASSERT_TRUE(shm::RecvReply(sock_, &rep));
  EXPECT_EQ(rep.error, 0u);
  EXPECT_EQ(WriteFrom(h, 0, b.id, 0, 1).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // A second buffer ends with its connection.
  Buf c = Register(kMiB);
  close(sock_);
  sock_ = -1;
  for (int i = 0; i < 1000 && Stats().buffers() != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(5));  // poll, bounded
  }
  v1::SharedBufferStats s = Stats();
  EXPECT_EQ(s.buffers(), 0u);
  EXPECT_EQ(s.bytes(), 0u);
  EXPECT_EQ(s.registrations(), 2u);
  EXPECT_EQ(s.unregistrations(), 2u);
  EXPECT_EQ(WriteFrom(h, 0, c.id, 0, 1).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// Another principal's buffer is PERMISSION_DENIED "permission denied":
// covered in //core/shm:shared_buffer_registry_test (Acquire by another uid),
// which the handler calls; no fork-after-gRPC here.

// A client (same uid: its buffer is the principal's, so this process can
// name it) registers 32 MiB, punches holes in it without pause, and is
// SIGKILLed while this process copies through that buffer.
TEST_F(ShmE2eTest, ClientSigkillMidCopyAndHolePunchingLeaveTheDaemonServing) {
  const std::string h = NewObject(32 * kMiB, "smem");
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    int s = shm::ConnectRegistration(shm_path_);
    int fd = shm::MakeMemfd(32 * kMiB, shm::kGoodSeals);
    shm::ShmRequest r;
    r.op = shm::kOpRegister;
    r.size = 32 * kMiB;
    shm::SendRequest(s, r, {fd});
    shm::ShmReply rep;
    if (!shm::RecvReply(s, &rep) || rep.error != 0) _exit(1);
    if (write(p[1], &rep.buffer_id, 8) != 8) _exit(1);
    for (;;) {
      fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 32 * kMiB);
    }
  }
  ASSERT_GT(pid, 0);
  close(p[1]);
  uint64_t id = 0;
  ASSERT_EQ(read(p[0], &id, 8), 8);
  close(p[0]);
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::thread copier([&] {
    while (!stop) {
      grpc::Status a = WriteFrom(h, 0, id, 0, 32 * kMiB);
      grpc::Status b = ReadTo(h, 0, id, 0, 32 * kMiB);
      if (a.ok() && b.ok()) ++ok;
      if (a.error_code() == grpc::StatusCode::NOT_FOUND) break;
    }
  });
  for (int i = 0; i < 4000 && ok.load() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(5));  // poll, bounded
  }
  EXPECT_GE(ok.load(), 2);  // copies while holes were punched succeeded
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  for (int i = 0; i < 2000 && Stats().buffers() != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  stop = true;
  copier.join();
  EXPECT_EQ(Stats().buffers(), 0u);
  EXPECT_EQ(Stats().bytes(), 0u);
  EXPECT_EQ(WriteFrom(h, 0, id, 0, 1).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // Still serving, content ops included.
  Buf b = Register(kMiB);
  std::memset(b.p, 0x42, kMiB);
  ASSERT_TRUE(WriteFrom(h, 0, b.id, 0, kMiB).ok());
  std::string back;
  ASSERT_TRUE(ReadObject(*stubs_, h, 0, kMiB, &back).ok());
  EXPECT_EQ(back, std::string(kMiB, '\x42'));
  int status = 0;
  EXPECT_EQ(waitpid(daemon_.pid(), &status, WNOHANG), 0) << "daemon died";
}

}  // namespace
}  // namespace gpumig
