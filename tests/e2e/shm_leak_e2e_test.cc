// Shared buffers against the real gpumigd, counted from outside: every bad
// fd or record over the registration socket, a client trying to truncate or
// grow its buffer while the daemon copies, and a client SIGKILLed mid-copy
// each get a clear refusal (or none needed), the daemon keeps serving, and
// the daemon's own /proc/<pid>/fd and /proc/<pid>/maps hold no client fd or
// mapping afterwards (counts equal to before), with its shared-buffer
// accounting back to zero. (The same refusals in-process, with this
// process's counts: //core/shm:shared_buffer_registry_test.)
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/shm/test_registrar.h"
#include "gpumig/v1/daemon.grpc.pb.h"
#include "gpumig/v1/objects.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_harness.h"

namespace gpumig {
namespace {

namespace v1 = ::gpumig::v1;
using e2e::Ctx;
using e2e::kMiB;

constexpr uint64_t kPage = 4096;

// Entries of /proc/<pid>/fd; and of those, the ones that are memfds this
// test made ("memfd:gpumig-test", test_registrar.h).
int DaemonFds(pid_t pid, bool test_memfds_only) {
  const std::string dir = absl::StrCat("/proc/", pid, "/fd");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (!test_memfds_only) {
      ++n;
      continue;
    }
    char target[256] = {};
    const std::string link = absl::StrCat(dir, "/", e->d_name);
    if (readlink(link.c_str(), target, sizeof(target) - 1) > 0 &&
        absl::StrContains(target, "memfd:gpumig-test")) {
      ++n;
    }
  }
  closedir(d);
  return n;
}

// Lines of /proc/<pid>/maps mapping a memfd this test made.
int DaemonTestMaps(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/maps"));
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    if (absl::StrContains(line, "memfd:gpumig-test")) ++n;
  }
  return n;
}

class ShmLeakE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(daemon_.Start({e2e::TestConfig()}));
    stubs_ = std::make_unique<e2e::Stubs>(daemon_.Channel());
    v1::GetInfoResponse info;
    ASSERT_TRUE(stubs_->daemon->GetInfo(Ctx().get(), {}, &info).ok());
    shm_path_ = info.shared_buffer_socket();
    ASSERT_FALSE(shm_path_.empty());
    sock_ = shm::ConnectRegistration(shm_path_);
    ASSERT_GE(sock_, 0);
    // One round trip, so the daemon has accepted this connection before
    // the baseline is taken.
    shm::ShmRequest r;
    r.op = shm::kOpUnregister;
    r.buffer_id = 999999;
    shm::ShmReply rep;
    ASSERT_TRUE(shm::SendRequest(sock_, r, {}) && shm::RecvReply(sock_, &rep));
    fds0_ = DaemonFds(daemon_.pid(), false);
    ASSERT_GT(fds0_, 0);
  }
  void TearDown() override {
    if (sock_ >= 0) close(sock_);
  }

  // Sends `fds` with a REGISTER of `size` and returns the reply's error.
  uint32_t RegisterRaw(const std::vector<int>& fds, uint64_t size,
                       uint64_t* id = nullptr) {
    shm::ShmRequest r;
    r.op = shm::kOpRegister;
    r.size = size;
    shm::ShmReply rep;
    if (!shm::SendRequest(sock_, r, fds) || !shm::RecvReply(sock_, &rep)) {
      ADD_FAILURE() << "no reply";
      return ~0u;
    }
    if (id != nullptr) *id = rep.buffer_id;
    return rep.error;
  }

  v1::SharedBufferStats Stats() {
    v1::GetStatsResponse s;
    EXPECT_TRUE(stubs_->daemon->GetStats(Ctx().get(), {}, &s).ok());
    return s.shared_buffers();
  }

  grpc::Status Copy(bool write, const std::string& h, uint64_t id,
                    uint64_t len) {
    if (write) {
      v1::WriteFromBufferRequest req;
      req.set_handle(h);
      req.set_buffer_id(id);
      req.set_length(len);
      v1::WriteFromBufferResponse resp;
      return stubs_->objects->WriteFromBuffer(Ctx().get(), req, &resp);
    }
    v1::ReadToBufferRequest req;
    req.set_handle(h);
    req.set_buffer_id(id);
    req.set_length(len);
    v1::ReadToBufferResponse resp;
    return stubs_->objects->ReadToBuffer(Ctx().get(), req, &resp);
  }

  std::string NewObject(uint64_t size) {
    v1::CreateObjectResponse resp;
    EXPECT_TRUE(e2e::CreateObject(*stubs_, size, {"smem"}, &resp).ok());
    return resp.object().handle();
  }

  // The daemon holds no fd or mapping of this test's memfds, its fd count
  // is back to the baseline (bounded wait: closing a connection is
  // asynchronous), and its accounting is at zero.
  void ExpectNothingHeld() {
    // Without this test's registration connection once it is closed.
    const int fds = sock_ >= 0 ? fds0_ : fds0_ - 1;
    for (int i = 0; i < 400 && (DaemonFds(daemon_.pid(), false) != fds ||
                                Stats().buffers() != 0);
         ++i) {
      absl::SleepFor(absl::Milliseconds(5));  // Poll interval, bounded.
    }
    EXPECT_EQ(DaemonFds(daemon_.pid(), false), fds);
    EXPECT_EQ(DaemonFds(daemon_.pid(), true), 0);
    EXPECT_EQ(DaemonTestMaps(daemon_.pid()), 0);
    const v1::SharedBufferStats s = Stats();
    EXPECT_EQ(s.buffers(), 0u);
    EXPECT_EQ(s.bytes(), 0u);
    int status = 0;
    EXPECT_EQ(waitpid(daemon_.pid(), &status, WNOHANG), 0) << "daemon died";
  }

  e2e::TempDir dir_;
  e2e::Daemon daemon_{dir_};
  std::unique_ptr<e2e::Stubs> stubs_;
  std::string shm_path_;
  int sock_ = -1;
  int fds0_ = 0;
};

struct BadFd {
  const char* what;
  int fd;
  uint64_t size;
  shm::ShmError want;
};

TEST_F(ShmLeakE2eTest, EveryRefusedFdOrRecordLeavesTheDaemonHoldingNothing) {
  std::vector<BadFd> cases;
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  close(p[1]);
  cases.push_back({"pipe", p[0], kPage, shm::ShmError::kNotRegularFile});
  int sp[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
  close(sp[1]);
  cases.push_back({"socket", sp[0], kPage, shm::ShmError::kNotRegularFile});
  cases.push_back({"eventfd", eventfd(0, EFD_CLOEXEC), kPage,
                   shm::ShmError::kNotRegularFile});
  cases.push_back({"/dev/zero", open("/dev/zero", O_RDWR | O_CLOEXEC), kPage,
                   shm::ShmError::kNotRegularFile});
  cases.push_back({"unsealable memfd", shm::MakeMemfd(kPage, 0, false), kPage,
                   shm::ShmError::kMissingSealShrink});
  cases.push_back({"no GROW seal",
                   shm::MakeMemfd(kPage, F_SEAL_SHRINK | F_SEAL_SEAL), kPage,
                   shm::ShmError::kMissingSealGrow});
  cases.push_back({"write-sealed",
                   shm::MakeMemfd(kPage, shm::kGoodSeals | F_SEAL_WRITE), kPage,
                   shm::ShmError::kWriteSealed});
  const int good = shm::MakeMemfd(kPage, shm::kGoodSeals);
  cases.push_back(
      {"read-only reopen",
       open(absl::StrCat("/proc/self/fd/", good).c_str(), O_RDONLY | O_CLOEXEC),
       kPage, shm::ShmError::kNotReadWrite});
  cases.push_back({"size != st_size", shm::MakeMemfd(kPage, shm::kGoodSeals),
                   2 * kPage, shm::ShmError::kSizeMismatch});
  for (const BadFd& c : cases) {
    ASSERT_GE(c.fd, 0) << c.what;
    EXPECT_EQ(RegisterRaw({c.fd}, c.size), static_cast<uint32_t>(c.want))
        << c.what;
    close(c.fd);
  }
  // Two fds in one message; a control message too large for the daemon's
  // buffer (MSG_CTRUNC); garbage and short records.
  EXPECT_EQ(RegisterRaw({good, good}, kPage),
            static_cast<uint32_t>(shm::ShmError::kTooManyFds));
  std::vector<int> many(40, good);
  EXPECT_EQ(RegisterRaw(many, kPage),
            static_cast<uint32_t>(shm::ShmError::kControlTruncated));
  uint8_t junk[33];
  for (size_t i = 0; i < sizeof(junk); ++i) junk[i] = uint8_t(i * 37 + 1);
  shm::ShmReply rep;
  for (size_t len : {size_t{5}, size_t{32}, size_t{33}}) {
    ASSERT_TRUE(shm::SendRaw(sock_, junk, len, {good}));
    ASSERT_TRUE(shm::RecvReply(sock_, &rep));
    EXPECT_EQ(rep.error,
              static_cast<uint32_t>(len == 32 ? shm::ShmError::kBadMagic
                                              : shm::ShmError::kBadRecordSize))
        << len;
  }
  close(good);
  ExpectNothingHeld();
  // Rejections count refused fds and limits (docs/operations.md), not
  // malformed records.
  EXPECT_EQ(Stats().rejections(), cases.size());
  // Still serving: a good buffer registers and copies.
  uint64_t id = 0;
  const int fd = shm::MakeMemfd(kMiB, shm::kGoodSeals);
  ASSERT_EQ(RegisterRaw({fd}, kMiB, &id), 0u);
  close(fd);
  const std::string h = NewObject(kMiB);
  EXPECT_TRUE(Copy(true, h, id, kMiB).ok());
  EXPECT_EQ(DaemonTestMaps(daemon_.pid()), 1);
  EXPECT_EQ(DaemonFds(daemon_.pid(), true), 0);  // mapped, fd closed
  close(sock_);
  sock_ = -1;
  ExpectNothingHeld();
}

// F_SEAL_SHRINK and F_SEAL_GROW make truncation and growth fail in the
// client while the daemon copies (so the daemon can never SIGBUS on a page
// past the end); punched holes read back as zeros.
TEST_F(ShmLeakE2eTest, ClientTruncatingOrGrowingMidCopyIsRefusedByTheSeals) {
  const uint64_t size = 8 * kMiB;
  const int fd = shm::MakeMemfd(size, shm::kGoodSeals);
  ASSERT_GE(fd, 0);
  uint8_t* b = static_cast<uint8_t*>(
      mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  ASSERT_NE(b, MAP_FAILED);
  std::memset(b, 0x3c, size);
  uint64_t id = 0;
  ASSERT_EQ(RegisterRaw({fd}, size, &id), 0u);
  const std::string h = NewObject(size);
  std::atomic<bool> stop{false};
  std::atomic<int> copies{0}, failures{0};
  std::thread copier([&] {
    for (uint64_t i = 0; !stop; ++i) {
      (Copy(i % 2 == 0, h, id, size).ok() ? copies : failures)++;
    }
  });
  auto wait_copies = [&](int n) {
    for (int i = 0; i < 10000 && copies.load() < n && failures.load() == 0;
         ++i) {
      absl::SleepFor(absl::Milliseconds(1));  // Poll interval, bounded.
    }
  };
  wait_copies(4);
  auto refused = [](int rc) { return rc == 0 ? 0 : errno; };
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(refused(ftruncate(fd, 0)), EPERM);
    EXPECT_EQ(refused(ftruncate(fd, size / 2)), EPERM);
    EXPECT_EQ(refused(ftruncate(fd, 2 * size)), EPERM);
    EXPECT_EQ(refused(fallocate(fd, 0, size, kMiB)), EPERM);  // grow
    EXPECT_EQ(
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, kMiB), 0);
  }
  wait_copies(copies.load() + 4);
  stop = true;
  copier.join();
  EXPECT_EQ(failures.load(), 0);
  // A punched hole reads back as zeros through the daemon (punched again:
  // the copier's last ReadToBuffer may have filled it).
  ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, kMiB),
            0);
  std::memset(b + kMiB, 0x3c, size - kMiB);
  ASSERT_TRUE(Copy(true, h, id, size).ok());
  std::memset(b, 0xff, size);
  ASSERT_TRUE(Copy(false, h, id, size).ok());
  EXPECT_EQ(b[0], 0);
  EXPECT_EQ(b[kMiB - 1], 0);
  EXPECT_EQ(b[kMiB], 0x3c);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), size);
  munmap(b, size);
  close(fd);
  close(sock_);
  sock_ = -1;
  ExpectNothingHeld();
}

// A client (a child process, same uid: its buffer is the principal's, so
// this process can name it) SIGKILLed while this process copies 32 MiB
// through its buffer: the buffer ends with its connection, the daemon keeps
// no fd or mapping of it and its accounting returns to zero.
TEST_F(ShmLeakE2eTest, ClientSigkilledMidCopyLeavesTheDaemonHoldingNothing) {
  const uint64_t size = 32 * kMiB;
  const std::string h = NewObject(size);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    const int s = shm::ConnectRegistration(shm_path_);
    const int fd = shm::MakeMemfd(size, shm::kGoodSeals);
    shm::ShmRequest r;
    r.op = shm::kOpRegister;
    r.size = size;
    shm::ShmReply rep;
    if (!shm::SendRequest(s, r, {fd}) || !shm::RecvReply(s, &rep) ||
        rep.error != 0) {
      _exit(1);
    }
    if (write(p[1], &rep.buffer_id, 8) != 8) _exit(1);
    void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    for (uint8_t v = 0;; ++v) std::memset(m, v, size);  // until killed
  }
  ASSERT_GT(pid, 0);
  close(p[1]);
  uint64_t id = 0;
  ASSERT_EQ(read(p[0], &id, 8), 8);
  close(p[0]);
  std::atomic<int> ok{0};
  std::atomic<bool> gone{false};
  std::thread copier([&] {
    for (uint64_t i = 0; !gone; ++i) {
      const grpc::Status s = Copy(i % 2 == 0, h, id, size);
      if (s.ok()) {
        ++ok;
      } else {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND)
            << s.error_message();
        gone = true;
      }
    }
  });
  for (int i = 0; i < 4000 && ok.load() < 3; ++i) {
    absl::SleepFor(absl::Milliseconds(2));  // Poll interval, bounded.
  }
  EXPECT_GE(ok.load(), 3);
  EXPECT_EQ(DaemonTestMaps(daemon_.pid()), 1);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  for (int i = 0; i < 2000 && !gone; ++i) {
    absl::SleepFor(absl::Milliseconds(5));  // Poll interval, bounded.
  }
  EXPECT_TRUE(gone.load()) << "the buffer outlived its client";
  gone = true;
  copier.join();
  ExpectNothingHeld();
  const v1::SharedBufferStats s = Stats();
  EXPECT_EQ(s.registrations(), 1u);
  EXPECT_EQ(s.unregistrations(), 1u);
  // Still serving.
  const int fd = shm::MakeMemfd(kMiB, shm::kGoodSeals);
  uint64_t id2 = 0;
  ASSERT_EQ(RegisterRaw({fd}, kMiB, &id2), 0u);
  close(fd);
  EXPECT_TRUE(Copy(false, h, id2, kMiB).ok());
}

}  // namespace
}  // namespace gpumig
