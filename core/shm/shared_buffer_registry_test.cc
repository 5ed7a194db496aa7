#include "core/shm/shared_buffer_registry.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "core/shm/registration_protocol.h"
#include "core/shm/registration_server.h"
#include "core/shm/test_registrar.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace shm {
namespace {

constexpr uint64_t kPage = 4096;

std::string TmpDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

class RegistrationTest : public ::testing::Test {
 protected:
  void SetUp() override { StartWith(ShmLimits{}); }
  void StartWith(ShmLimits limits) {
    server_.reset();
    reg_ = std::make_unique<SharedBufferRegistry>(limits);
    server_ = std::make_unique<RegistrationServer>(reg_.get());
    // sun_path is short: bazel's TEST_TMPDIR may not fit.
    if (dir_.empty()) {
      char t[] = "/tmp/gshmXXXXXX";
      ASSERT_NE(mkdtemp(t), nullptr);
      dir_ = t;
    }
    path_ = dir_ + "/gpumig-shm.sock";
    absl::Status st = server_->Start(path_, 0660, static_cast<gid_t>(-1));
    ASSERT_TRUE(st.ok()) << st;
    sock_ = ConnectRegistration(path_);
    ASSERT_GE(sock_, 0);
    // One round trip: the server has accepted (its fd and thread exist)
    // before a test takes /proc/self baselines.
    ExpectStillServes();
  }
  void TearDown() override {
    if (sock_ >= 0) close(sock_);
    server_.reset();
    reg_.reset();
    if (!dir_.empty()) rmdir(dir_.c_str());
  }
  // Sends REGISTER with `fds` (closed here afterwards) and returns the reply.
  ShmReply Register(std::vector<int> fds, uint64_t size, uint64_t tag = 7) {
    ShmRequest r;
    r.op = kOpRegister;
    r.tag = tag;
    r.size = size;
    EXPECT_TRUE(SendRequest(sock_, r, fds));
    for (int fd : fds) close(fd);
    ShmReply rep;
    EXPECT_TRUE(RecvReply(sock_, &rep));
    return rep;
  }
  ShmReply Unregister(uint64_t id) {
    ShmRequest r;
    r.op = kOpUnregister;
    r.buffer_id = id;
    EXPECT_TRUE(SendRequest(sock_, r, {}));
    ShmReply rep;
    EXPECT_TRUE(RecvReply(sock_, &rep));
    return rep;
  }
  void ExpectRefused(const ShmReply& rep, ShmError e) {
    EXPECT_EQ(rep.error, static_cast<uint32_t>(e))
        << "got " << ShmErrorName(static_cast<ShmError>(rep.error)) << " ("
        << rep.message << ") want " << ShmErrorName(e);
    EXPECT_EQ(rep.code, static_cast<uint32_t>(ShmErrorCode(e)));
    EXPECT_EQ(rep.buffer_id, 0u);
  }
  // The connection still works after a refusal.
  void ExpectStillServes() {
    ShmReply rep = Register({MakeMemfd(kPage, kGoodSeals)}, kPage);
    ASSERT_EQ(rep.error, 0u) << rep.message;
    ASSERT_EQ(Unregister(rep.buffer_id).error, 0u);
  }

  std::unique_ptr<SharedBufferRegistry> reg_;
  std::unique_ptr<RegistrationServer> server_;
  std::string dir_;
  std::string path_;
  int sock_ = -1;
};

TEST_F(RegistrationTest, RegisterCopyUnregisterLeavesNoFdOrMapping) {
  int fds0 = CountOpenFds();
  int maps0 = CountMemfdMaps();
  int fd = MakeMemfd(4 * kPage, kGoodSeals);
  void* mine =
      mmap(nullptr, 4 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(mine, MAP_FAILED);
  std::memset(mine, 0xab, 4 * kPage);
  ShmReply rep = Register({fd}, 4 * kPage, 42);
  ASSERT_EQ(rep.error, 0u) << rep.message;
  EXPECT_EQ(rep.tag, 42u);
  EXPECT_EQ(rep.op, kOpRegister);
  EXPECT_EQ(rep.size, 4 * kPage);
  EXPECT_NE(rep.buffer_id, 0u);
  EXPECT_EQ(reg_->stats().buffers, 1u);
  EXPECT_EQ(reg_->stats().bytes, 4 * kPage);
  {
    auto ref = reg_->Acquire(getuid(), rep.buffer_id);
    ASSERT_TRUE(ref.ok()) << ref.status();
    EXPECT_EQ(ref->data()[100], 0xab);  // the daemon sees the client's bytes
    ref->data()[200] = 0x11;            // and the client sees the daemon's
  }
  EXPECT_EQ(static_cast<uint8_t*>(mine)[200], 0x11);
  munmap(mine, 4 * kPage);
  ShmReply un = Unregister(rep.buffer_id);
  EXPECT_EQ(un.error, 0u);
  EXPECT_EQ(un.buffer_id, rep.buffer_id);
  ShmStats s = reg_->stats();
  EXPECT_EQ(s.buffers, 0u);
  EXPECT_EQ(s.bytes, 0u);
  EXPECT_EQ(s.registrations, 2u);  // SetUp's round trip too
  EXPECT_EQ(s.unregistrations, 2u);
  EXPECT_EQ(CountOpenFds(), fds0);
  EXPECT_EQ(CountMemfdMaps(), maps0);
  EXPECT_FALSE(reg_->Acquire(getuid(), rep.buffer_id).ok());
  // Ids are never reused.
  ShmReply again = Register({MakeMemfd(kPage, kGoodSeals)}, kPage);
  EXPECT_GT(again.buffer_id, rep.buffer_id);
}

TEST_F(RegistrationTest, RefusesPipe) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  close(p[1]);
  ExpectRefused(Register({p[0]}, kPage), ShmError::kNotRegularFile);
  ExpectStillServes();
}

TEST_F(RegistrationTest, RefusesSocket) {
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
  close(s[1]);
  ExpectRefused(Register({s[0]}, kPage), ShmError::kNotRegularFile);
}

TEST_F(RegistrationTest, RefusesEventfd) {
  ExpectRefused(Register({eventfd(0, 0)}, kPage), ShmError::kNotRegularFile);
}

TEST_F(RegistrationTest, RefusesDevZero) {
  ExpectRefused(Register({open("/dev/zero", O_RDWR)}, kPage),
                ShmError::kNotRegularFile);
}

TEST_F(RegistrationTest, RefusesNonTmpfsFile) {
  std::string f = absl::StrCat(TmpDir(), "/disk-file");
  int fd = open(f.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, kPage), 0);
  struct statfs fs;
  ASSERT_EQ(fstatfs(fd, &fs), 0);
  if (static_cast<uint64_t>(fs.f_type) == TMPFS_MAGIC) {
    close(fd);
    GTEST_SKIP() << "TEST_TMPDIR is tmpfs: no disk file to offer";
  }
  ExpectRefused(Register({fd}, kPage), ShmError::kNotTmpfs);
}

TEST_F(RegistrationTest, RefusesUnsealableMemfd) {
  ExpectRefused(Register({MakeMemfd(kPage, 0, /*allow_sealing=*/false)}, kPage),
                ShmError::kMissingSealShrink);
}

TEST_F(RegistrationTest, RefusesEachMissingSeal) {
  ExpectRefused(Register({MakeMemfd(kPage, 0)}, kPage),
                ShmError::kMissingSealShrink);
  ExpectRefused(Register({MakeMemfd(kPage, F_SEAL_GROW | F_SEAL_SEAL)}, kPage),
                ShmError::kMissingSealShrink);
  ExpectRefused(
      Register({MakeMemfd(kPage, F_SEAL_SHRINK | F_SEAL_SEAL)}, kPage),
      ShmError::kMissingSealGrow);
  ExpectRefused(
      Register({MakeMemfd(kPage, F_SEAL_SHRINK | F_SEAL_GROW)}, kPage),
      ShmError::kMissingSealSeal);
  ExpectStillServes();
}

TEST_F(RegistrationTest, RefusesWriteSealed) {
  ExpectRefused(Register({MakeMemfd(kPage, kGoodSeals | F_SEAL_WRITE)}, kPage),
                ShmError::kWriteSealed);
  int fd = MakeMemfd(kPage, F_SEAL_SHRINK | F_SEAL_GROW);
  if (fcntl(fd, F_ADD_SEALS, 0x0010 /*F_SEAL_FUTURE_WRITE*/) == 0) {
    ASSERT_EQ(fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL), 0);
    ExpectRefused(Register({fd}, kPage), ShmError::kWriteSealed);
  } else {
    close(fd);  // kernel < 5.1: no FUTURE_WRITE to test
  }
}

TEST_F(RegistrationTest, RefusesReadOnlyReopen) {
  int fd = MakeMemfd(kPage, kGoodSeals);
  int ro = open(absl::StrCat("/proc/self/fd/", fd).c_str(), O_RDONLY);
  close(fd);
  ASSERT_GE(ro, 0);
  ExpectRefused(Register({ro}, kPage), ShmError::kNotReadWrite);
}

TEST_F(RegistrationTest, RefusesBadSizes) {
  ExpectRefused(Register({MakeMemfd(2 * kPage, kGoodSeals)}, kPage),
                ShmError::kSizeMismatch);
  ExpectRefused(Register({MakeMemfd(kPage, kGoodSeals)}, 2 * kPage),
                ShmError::kSizeMismatch);
  ExpectRefused(Register({MakeMemfd(100, kGoodSeals)}, 100),
                ShmError::kBadSize);
  ExpectRefused(Register({MakeMemfd(0, kGoodSeals)}, 0), ShmError::kBadSize);
  ExpectRefused(Register({MakeMemfd(kPage, kGoodSeals)}, ~uint64_t{0} - 4095),
                ShmError::kSizeMismatch);
}

TEST_F(RegistrationTest, RefusesTwoFdsAndClosesBoth) {
  int fds0 = CountOpenFds();
  ExpectRefused(
      Register({MakeMemfd(kPage, kGoodSeals), MakeMemfd(kPage, kGoodSeals)},
               kPage),
      ShmError::kTooManyFds);
  EXPECT_EQ(CountOpenFds(), fds0);
}

TEST_F(RegistrationTest, RefusesTruncatedControlMessageAndClosesAll) {
  int fds0 = CountOpenFds();
  std::vector<int> many;
  for (int i = 0; i < 40; ++i) many.push_back(MakeMemfd(kPage, kGoodSeals));
  ExpectRefused(Register(many, kPage), ShmError::kControlTruncated);
  EXPECT_EQ(CountOpenFds(), fds0);
  ExpectStillServes();
}

TEST_F(RegistrationTest, RefusesGarbageAndShortRecords) {
  int fds0 = CountOpenFds();
  uint8_t junk[64];
  for (size_t i = 0; i < sizeof(junk); ++i) {
    junk[i] = static_cast<uint8_t>(i * 37 + 1);
  }
  ShmReply rep;
  for (size_t len : {size_t{1}, size_t{31}, size_t{33}, size_t{64}}) {
    int fd = MakeMemfd(kPage, kGoodSeals);
    ASSERT_TRUE(SendRaw(sock_, junk, len, {fd}));
    close(fd);
    ASSERT_TRUE(RecvReply(sock_, &rep));
    ExpectRefused(rep, ShmError::kBadRecordSize);
    EXPECT_EQ(rep.tag, 0u);
  }
  ASSERT_TRUE(SendRaw(sock_, junk, 32, {}));
  ASSERT_TRUE(RecvReply(sock_, &rep));
  ExpectRefused(rep, ShmError::kBadMagic);
  EXPECT_EQ(CountOpenFds(), fds0);
  ExpectStillServes();
}

TEST_F(RegistrationTest, RefusesBadHeaderFields) {
  ShmReply rep;
  ShmRequest r;
  r.op = kOpRegister;
  r.size = kPage;
  r.version = 2;
  ASSERT_TRUE(SendRequest(sock_, r, {}));
  ASSERT_TRUE(RecvReply(sock_, &rep));
  ExpectRefused(rep, ShmError::kBadVersion);
  r.version = 1;
  r.op = 9;
  ASSERT_TRUE(SendRequest(sock_, r, {}));
  ASSERT_TRUE(RecvReply(sock_, &rep));
  ExpectRefused(rep, ShmError::kBadOp);
  // REGISTER with a buffer_id.
  r.op = kOpRegister;
  r.buffer_id = 5;
  int fd = MakeMemfd(kPage, kGoodSeals);
  ASSERT_TRUE(SendRequest(sock_, r, {fd}));
  close(fd);
  ASSERT_TRUE(RecvReply(sock_, &rep));
  ExpectRefused(rep, ShmError::kBadFields);
  // REGISTER without an fd.
  r.buffer_id = 0;
  ASSERT_TRUE(SendRequest(sock_, r, {}));
  ASSERT_TRUE(RecvReply(sock_, &rep));
  ExpectRefused(rep, ShmError::kNoFd);
  // UNREGISTER with an fd, with a size, of an unknown buffer.
  r.op = kOpUnregister;
  r.size = 0;
  r.buffer_id = 1;
  fd = MakeMemfd(kPage, kGoodSeals);
  ASSERT_TRUE(SendRequest(sock_, r, {fd}));
  close(fd);
  ASSERT_TRUE(RecvReply(sock_, &rep));
  ExpectRefused(rep, ShmError::kUnexpectedFd);
  r.size = 1;
  ASSERT_TRUE(SendRequest(sock_, r, {}));
  ASSERT_TRUE(RecvReply(sock_, &rep));
  ExpectRefused(rep, ShmError::kBadFields);
  ExpectRefused(Unregister(12345), ShmError::kUnknownBuffer);
  ExpectStillServes();
}

TEST_F(RegistrationTest, AnotherPrincipalOrConnectionCannotUseTheBuffer) {
  ShmReply rep = Register({MakeMemfd(kPage, kGoodSeals)}, kPage);
  ASSERT_EQ(rep.error, 0u);
  auto other = reg_->Acquire(getuid() + 1, rep.buffer_id);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(other.status().message(), "permission denied");
  EXPECT_EQ(reg_->Acquire(getuid(), 0).status().code(),
            absl::StatusCode::kNotFound);
  // A second connection of the same uid cannot UNREGISTER it.
  int s2 = ConnectRegistration(path_);
  ShmRequest r;
  r.op = kOpUnregister;
  r.buffer_id = rep.buffer_id;
  ASSERT_TRUE(SendRequest(s2, r, {}));
  ShmReply rep2;
  ASSERT_TRUE(RecvReply(s2, &rep2));
  EXPECT_EQ(rep2.error, static_cast<uint32_t>(ShmError::kUnknownBuffer));
  close(s2);
  EXPECT_EQ(reg_->stats().buffers, 1u);
}

TEST_F(RegistrationTest, LimitsRefuseAndAccountingReturnsToZero) {
  ShmLimits lim;
  lim.max_buffers_per_principal = 2;
  lim.max_bytes_per_principal = 3 * kPage;
  lim.max_total_bytes = 3 * kPage;
  close(sock_);
  StartWith(lim);
  ShmReply a = Register({MakeMemfd(kPage, kGoodSeals)}, kPage);
  ASSERT_EQ(a.error, 0u);
  ExpectRefused(Register({MakeMemfd(4 * kPage, kGoodSeals)}, 4 * kPage),
                ShmError::kPrincipalBytesExceeded);
  ShmReply b = Register({MakeMemfd(kPage, kGoodSeals)}, kPage);
  ASSERT_EQ(b.error, 0u);
  ShmReply c = Register({MakeMemfd(kPage, kGoodSeals)}, kPage);
  EXPECT_EQ(c.error,
            static_cast<uint32_t>(ShmError::kPrincipalBuffersExceeded));
  EXPECT_EQ(reg_->stats().buffers, 2u);
  EXPECT_EQ(Unregister(a.buffer_id).error, 0u);
  EXPECT_EQ(Unregister(b.buffer_id).error, 0u);
  ShmStats s = reg_->stats();
  EXPECT_EQ(s.buffers, 0u);
  EXPECT_EQ(s.bytes, 0u);
  EXPECT_EQ(s.rejections, 2u);
}

TEST(SharedBufferRegistryTest, TotalCapRefuses) {
  ShmLimits lim;
  lim.max_total_bytes = kPage;
  SharedBufferRegistry reg(lim);
  uint64_t conn = reg.OpenConnection();
  uint64_t id = 0;
  ASSERT_EQ(reg.Register(1, conn, MakeMemfd(kPage, kGoodSeals), kPage, &id),
            ShmError::kOk);
  EXPECT_EQ(reg.Register(2, conn, MakeMemfd(kPage, kGoodSeals), kPage, &id),
            ShmError::kTotalBytesExceeded);
  reg.CloseConnection(conn);
  EXPECT_EQ(reg.stats().buffers, 0u);
  EXPECT_EQ(reg.PrincipalEntriesForTest(), 0u);
}

// Refusals of every kind by principals that never registered anything leave
// no per-principal entry behind (the tables grow only with live buffers).
TEST(SharedBufferRegistryTest, RefusalsLeaveNoPerPrincipalEntries) {
  ShmLimits lim;
  lim.max_buffers_per_principal = 1;
  lim.max_bytes_per_principal = 2 * kPage;
  lim.max_total_bytes = 2 * kPage;
  ShmPinHooks hooks;
  hooks.pin = [](void*, size_t len) {
    return len == 2 * kPage ? absl::ResourceExhaustedError("no")
                            : absl::OkStatus();
  };
  SharedBufferRegistry reg(lim, hooks);
  uint64_t conn = reg.OpenConnection();
  uint64_t id = 0;
  EXPECT_EQ(
      reg.Register(10, conn, MakeMemfd(4 * kPage, kGoodSeals), 4 * kPage, &id),
      ShmError::kPrincipalBytesExceeded);
  EXPECT_EQ(reg.Register(11, conn, MakeMemfd(kPage, 0), kPage, &id),
            ShmError::kMissingSealShrink);
  EXPECT_EQ(
      reg.Register(12, conn, MakeMemfd(2 * kPage, kGoodSeals), 2 * kPage, &id),
      ShmError::kPinFailed);
  EXPECT_EQ(reg.PrincipalEntriesForTest(), 0u);
  ASSERT_EQ(reg.Register(13, conn, MakeMemfd(kPage, kGoodSeals), kPage, &id),
            ShmError::kOk);
  EXPECT_EQ(reg.Register(13, conn, MakeMemfd(kPage, kGoodSeals), kPage, &id),
            ShmError::kPrincipalBuffersExceeded);
  EXPECT_EQ(
      reg.Register(14, conn, MakeMemfd(2 * kPage, kGoodSeals), 2 * kPage, &id),
      ShmError::kTotalBytesExceeded);
  EXPECT_EQ(reg.PrincipalEntriesForTest(), 2u);  // uid 13's count and bytes
  reg.CloseConnection(conn);
  EXPECT_EQ(reg.PrincipalEntriesForTest(), 0u);
  EXPECT_EQ(reg.stats().rejections, 5u);
}

TEST(SharedBufferRegistryTest, PinFailureRefusesAndUnmaps) {
  int maps0 = CountMemfdMaps();
  std::atomic<int> unpins{0};
  ShmPinHooks hooks;
  hooks.pin = [](void*, size_t) { return absl::ResourceExhaustedError("no"); };
  hooks.unpin = [&](void*, size_t) { ++unpins; };
  SharedBufferRegistry reg(ShmLimits{}, hooks);
  uint64_t id = 0;
  EXPECT_EQ(reg.Register(1, reg.OpenConnection(), MakeMemfd(kPage, kGoodSeals),
                         kPage, &id),
            ShmError::kPinFailed);
  EXPECT_EQ(CountMemfdMaps(), maps0);
  EXPECT_EQ(unpins.load(), 0);
}

TEST(SharedBufferRegistryTest, UnregisterWaitsForCopyInFlightAndUnpinsFirst) {
  std::atomic<int> pinned{0};
  ShmPinHooks hooks;
  hooks.pin = [&](void*, size_t) {
    ++pinned;
    return absl::OkStatus();
  };
  hooks.unpin = [&](void*, size_t) { --pinned; };
  SharedBufferRegistry reg(ShmLimits{}, hooks);
  uint64_t conn = reg.OpenConnection();
  uint64_t id = 0;
  ASSERT_EQ(reg.Register(1, conn, MakeMemfd(kPage, kGoodSeals), kPage, &id),
            ShmError::kOk);
  EXPECT_EQ(pinned.load(), 1);
  auto ref = reg.Acquire(1, id);
  ASSERT_TRUE(ref.ok());
  absl::Notification done;
  std::thread t([&] {
    EXPECT_EQ(reg.Unregister(conn, id), ShmError::kOk);
    done.Notify();
  });
  // The copy still runs on mapped pages while UNREGISTER waits.
  for (int i = 0; i < 100; ++i) {
    std::memset(ref->data(), i, kPage);
    EXPECT_FALSE(done.HasBeenNotified());
  }
  // A new copy cannot start on an ending buffer.
  while (reg.Acquire(1, id).ok()) std::this_thread::yield();
  *ref = BufferRef();
  t.join();
  EXPECT_EQ(pinned.load(), 0);
  EXPECT_EQ(reg.stats().buffers, 0u);
}

TEST(SharedBufferRegistryTest, ClientPunchingHolesDuringCopyReadsZeros) {
  SharedBufferRegistry reg(ShmLimits{});
  int fd = MakeMemfd(16 * kPage, kGoodSeals);
  ASSERT_EQ(fallocate(fd, 0, 0, 16 * kPage), 0);
  int mine = dup(fd);
  uint64_t id = 0;
  ASSERT_EQ(reg.Register(1, reg.OpenConnection(), fd, 16 * kPage, &id),
            ShmError::kOk);
  auto ref = reg.Acquire(1, id);
  ASSERT_TRUE(ref.ok());
  std::memset(ref->data(), 0x5a, 16 * kPage);
  std::atomic<bool> stop{false};
  std::thread puncher([&] {
    while (!stop) {
      fallocate(mine, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                16 * kPage);
    }
  });
  std::vector<uint8_t> out(16 * kPage);
  for (int i = 0; i < 200; ++i) {
    std::memcpy(out.data(), ref->data(), out.size());  // never faults
    std::memset(ref->data(), 0x5a, 16 * kPage);
  }
  stop = true;
  puncher.join();
  fallocate(mine, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 16 * kPage);
  std::memcpy(out.data(), ref->data(), out.size());
  EXPECT_EQ(out[0], 0);  // what the reader sees after a hole: zeros
  close(mine);
}

TEST_F(RegistrationTest, ConnectionCloseAndSigkillEndBuffers) {
  int maps0 = CountMemfdMaps();
  int fds0 = CountOpenFds();
  ASSERT_EQ(Register({MakeMemfd(kPage, kGoodSeals)}, kPage).error, 0u);
  close(sock_);
  sock_ = -1;
  for (int i = 0; i < 2000 && reg_->stats().buffers != 0; ++i) usleep(1000);
  EXPECT_EQ(reg_->stats().buffers, 0u);

  pid_t pid = fork();
  if (pid == 0) {
    int s = ConnectRegistration(path_);
    int fd = MakeMemfd(kPage, kGoodSeals);
    ShmRequest r;
    r.op = kOpRegister;
    r.size = kPage;
    SendRequest(s, r, {fd});
    ShmReply rep;
    RecvReply(s, &rep);
    for (;;) pause();
  }
  ASSERT_GT(pid, 0);
  for (int i = 0; i < 5000 && reg_->stats().buffers != 1; ++i) usleep(1000);
  ASSERT_EQ(reg_->stats().buffers, 1u);
  // A copy is in flight when the client dies.
  std::thread copier;
  {
    // Find the child's buffer: ids are sequential, it is the newest.
    uint64_t id = reg_->stats().registrations + 0;
    auto ref = reg_->Acquire(getuid(), id);
    ASSERT_TRUE(ref.ok()) << ref.status();
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    usleep(20000);
    std::memset(ref->data(), 1, kPage);  // still mapped
    EXPECT_EQ(reg_->stats().buffers, 1u);
  }
  for (int i = 0; i < 5000 && reg_->stats().buffers != 0; ++i) usleep(1000);
  EXPECT_EQ(reg_->stats().buffers, 0u);
  EXPECT_EQ(reg_->stats().bytes, 0u);
  for (int i = 0; i < 2000 && reg_->stats().connections != 0; ++i) usleep(1000);
  EXPECT_EQ(reg_->stats().connections, 0u);
  EXPECT_EQ(CountMemfdMaps(), maps0);
  EXPECT_LE(CountOpenFds(), fds0);
  // The server keeps serving.
  sock_ = ConnectRegistration(path_);
  ASSERT_GE(sock_, 0);
  ExpectStillServes();
}

}  // namespace
}  // namespace shm
}  // namespace gpumig
