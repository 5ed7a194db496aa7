// client/shared_buffer.h against core/shm's RegistrationServer over a real
// SOCK_SEQPACKET socket: both sides see the same pages, refusals carry the
// documented code and name, and accounting returns to zero on destruction
// and when a client process exits without unregistering.
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/shared_buffer.h"
#include "core/shm/registration_server.h"
#include "core/shm/shared_buffer_registry.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

using client::SharedBuffer;

int OpenFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}

// Bazel's TEST_TMPDIR is often longer than sun_path allows.
std::string SocketPath(const char* name) {
  char dir[] = "/tmp/gpumig-interop-XXXXXX";
  if (mkdtemp(dir) == nullptr) return "";
  return std::string(dir) + "/" + name;
}

class InteropTest : public ::testing::Test {
 protected:
  InteropTest() : registry_(Limits()), server_(&registry_) {}
  static shm::ShmLimits Limits() {
    shm::ShmLimits l;
    l.max_buffers_per_principal = 2;
    l.max_bytes_per_principal = 1 << 20;
    l.max_total_bytes = 4 << 20;
    return l;
  }
  void SetUp() override {
    path_ = SocketPath("interop-shm.sock");
    absl::Status s = server_.Start(path_, 0600, -1);
    ASSERT_TRUE(s.ok()) << s;
  }
  void TearDown() override {
    server_.Stop();
    rmdir(path_.substr(0, path_.rfind('/')).c_str());
  }
  // Waits (bounded) for the server to see the client's close.
  bool BuffersReach(uint64_t n) {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      shm::ShmStats s = registry_.stats();
      if (s.buffers == n && s.connections == 0) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }
  shm::SharedBufferRegistry registry_;
  shm::RegistrationServer server_;
  std::string path_;
};

TEST_F(InteropTest, BothSidesSeeTheSamePagesAndDestructionUnregisters) {
  const int before = OpenFds();
  {
    absl::StatusOr<SharedBuffer> b = SharedBuffer::Create(path_, 64 << 10);
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_NE(b->id(), 0u);
    EXPECT_EQ(registry_.stats().buffers, 1u);
    EXPECT_EQ(registry_.stats().bytes, uint64_t{64} << 10);
    absl::StatusOr<shm::BufferRef> ref = registry_.Acquire(getuid(), b->id());
    ASSERT_TRUE(ref.ok()) << ref.status();
    ASSERT_EQ(ref->size(), b->size());
    std::memset(b->data(), 0x5a, b->size());
    EXPECT_EQ(ref->data()[b->size() - 1], 0x5a);
    ref->data()[7] = 0x11;
    EXPECT_EQ(b->data()[7], 0x11);
    // Another principal cannot name it.
    EXPECT_FALSE(registry_.Acquire(getuid() + 1, b->id()).ok());
  }
  EXPECT_EQ(registry_.stats().buffers, 0u);
  EXPECT_EQ(registry_.stats().bytes, 0u);
  EXPECT_EQ(registry_.stats().unregistrations, 1u);
  // The server closes its end once it reads the client's close.
  EXPECT_TRUE(BuffersReach(0));
  EXPECT_EQ(OpenFds(), before);
}

TEST_F(InteropTest, LimitsAreRefusedWithTheirNames) {
  absl::StatusOr<SharedBuffer> big = SharedBuffer::Create(path_, 2 << 20);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(big.status().message().find("PRINCIPAL_BYTES_EXCEEDED"),
            std::string::npos)
      << big.status();
  absl::StatusOr<SharedBuffer> a = SharedBuffer::Create(path_, 4096);
  absl::StatusOr<SharedBuffer> b = SharedBuffer::Create(path_, 4096);
  ASSERT_TRUE(a.ok() && b.ok());
  absl::StatusOr<SharedBuffer> c = SharedBuffer::Create(path_, 4096);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(c.status().message().find("PRINCIPAL_BUFFERS_EXCEEDED"),
            std::string::npos)
      << c.status();
  EXPECT_EQ(registry_.stats().buffers, 2u);
  EXPECT_GE(registry_.stats().rejections, 2u);
}

TEST_F(InteropTest, ClientExitWithoutUnregisterEndsItsBuffers) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    absl::StatusOr<SharedBuffer> b = SharedBuffer::Create(path_, 8192);
    if (!b.ok()) _exit(1);
    b->data()[0] = 1;
    _exit(0);  // no destructor: the kernel closes the connection
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(BuffersReach(0));
  EXPECT_EQ(registry_.stats().registrations, 1u);
}

}  // namespace
}  // namespace gpumig
