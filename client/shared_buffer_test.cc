// SharedBuffer against a fake registration server on a socketpair: the
// memfd the daemon receives is what the protocol requires, the records are
// byte-exact, refusals become the documented status, nothing leaks.
#include "client/shared_buffer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace gpumig::client {
namespace {

int OpenFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}

// What the fake daemon saw of one request.
struct Seen {
  shm_wire::Request request;
  int fds = 0;
  int seals = -1;
  int flags = -1;
  off_t st_size = -1;
  bool regular = false;
};

// Serves `replies` requests on `s`; `answer` builds each reply. Received fds
// are mapped, checked and closed, like the daemon does.
std::thread FakeDaemon(int s, int replies, std::vector<Seen>* seen,
                       std::function<shm_wire::Reply(const Seen&)> answer) {
  return std::thread([=] {
    for (int i = 0; i < replies; ++i) {
      uint8_t buf[64];
      iovec iov{buf, sizeof(buf)};
      alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      ssize_t n = recvmsg(s, &msg, MSG_CMSG_CLOEXEC);
      if (n <= 0) break;
      Seen x;
      auto req = shm_wire::DecodeRequest(absl::MakeConstSpan(buf, n));
      if (req.ok()) x.request = *req;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
           c = CMSG_NXTHDR(&msg, c)) {
        int count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (int k = 0; k < count; ++k) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
          ++x.fds;
          struct stat st;
          fstat(fd, &st);
          x.regular = S_ISREG(st.st_mode);
          x.st_size = st.st_size;
          x.seals = fcntl(fd, F_GET_SEALS);
          x.flags = fcntl(fd, F_GETFL) & O_ACCMODE;
          // The daemon's view of the bytes: write a marker it can be seen by.
          void* p = mmap(nullptr, st.st_size, PROT_READ | PROT_WRITE,
                         MAP_SHARED, fd, 0);
          if (p != MAP_FAILED) {
            static_cast<uint8_t*>(p)[0] = 0xab;
            munmap(p, st.st_size);
          }
          close(fd);
        }
      }
      seen->push_back(x);
      shm_wire::Reply reply = answer(x);
      auto out = shm_wire::EncodeReply(reply);
      send(s, out.data(), out.size(), MSG_NOSIGNAL);
    }
  });
}

shm_wire::Reply Ok(const Seen& x) {
  shm_wire::Reply r;
  r.op = x.request.op;
  r.tag = x.request.tag;
  r.buffer_id = x.request.op == shm_wire::kOpRegister ? 7 : x.request.buffer_id;
  r.size = x.request.size;
  return r;
}

TEST(SharedBufferWireTest, RequestIsByteExact) {
  shm_wire::Request r;
  r.op = shm_wire::kOpUnregister;
  r.tag = 0x0102030405060708;
  r.buffer_id = 0x1122;
  auto b = shm_wire::EncodeRequest(r);
  EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "GMSB");
  EXPECT_EQ(b[4], 1);
  EXPECT_EQ(b[5], 0);
  EXPECT_EQ(b[6], 2);
  EXPECT_EQ(b[8], 0x08);
  EXPECT_EQ(b[15], 0x01);
  for (int i = 16; i < 24; ++i) EXPECT_EQ(b[i], 0) << i;
  EXPECT_EQ(b[24], 0x22);
  EXPECT_EQ(b[25], 0x11);
}

TEST(SharedBufferWireTest, ReplyRoundTripsAndBadRepliesAreInternal) {
  shm_wire::Reply r;
  r.op = 1;
  r.tag = 99;
  r.error = 21;
  r.code = 8;
  r.message = "principal uid 1000 has 4 GiB registered";
  auto b = shm_wire::EncodeReply(r);
  auto d = shm_wire::DecodeReply(b);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->tag, 99u);
  EXPECT_EQ(d->message, r.message);
  absl::Status s = shm_wire::ReplyStatus(*d);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("PRINCIPAL_BYTES_EXCEEDED"), std::string::npos)
      << s;
  EXPECT_EQ(
      shm_wire::DecodeReply(absl::MakeConstSpan(b.data(), 127)).status().code(),
      absl::StatusCode::kInternal);
  b[0] ^= 1;
  EXPECT_EQ(shm_wire::DecodeReply(b).status().code(),
            absl::StatusCode::kInternal);
  // An error without a code is never reported as OK.
  r.code = 0;
  EXPECT_EQ(shm_wire::ReplyStatus(r).code(), absl::StatusCode::kUnknown);
}

TEST(SharedBufferTest, MemfdIsSealedSizedAndReadWrite) {
  auto fd = CreateSealedMemfd(3 * 4096);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(fcntl(*fd, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  EXPECT_EQ(fcntl(*fd, F_GETFL) & O_ACCMODE, O_RDWR);
  EXPECT_TRUE(fcntl(*fd, F_GETFD) & FD_CLOEXEC);
  struct stat st;
  ASSERT_EQ(fstat(*fd, &st), 0);
  EXPECT_EQ(st.st_size, 3 * 4096);
  EXPECT_NE(ftruncate(*fd, 4096), 0);  // sealed
  close(*fd);
  EXPECT_EQ(CreateSealedMemfd(0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateSealedMemfd(4097).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SharedBufferTest, RegistersOneSealedFdAndUnregistersOnDestruction) {
  const int before = OpenFds();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  std::vector<Seen> seen;
  std::thread daemon = FakeDaemon(sv[1], 2, &seen, Ok);
  {
    auto buffer = SharedBuffer::CreateOnSocket(sv[0], 10000);
    ASSERT_TRUE(buffer.ok()) << buffer.status();
    EXPECT_EQ(buffer->id(), 7u);
    EXPECT_EQ(buffer->size(), 12288u);   // rounded up to pages
    EXPECT_EQ(buffer->data()[0], 0xab);  // the daemon's write is visible
    SharedBuffer moved = std::move(*buffer);
    EXPECT_FALSE(buffer->valid());
    EXPECT_EQ(moved.span().size(), 12288u);
  }
  daemon.join();
  close(sv[1]);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].request.op, shm_wire::kOpRegister);
  EXPECT_EQ(seen[0].request.size, 12288u);
  EXPECT_EQ(seen[0].fds, 1);
  EXPECT_TRUE(seen[0].regular);
  EXPECT_EQ(seen[0].st_size, 12288);
  EXPECT_EQ(seen[0].seals, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  EXPECT_EQ(seen[0].flags, O_RDWR);
  EXPECT_EQ(seen[1].request.op, shm_wire::kOpUnregister);
  EXPECT_EQ(seen[1].request.buffer_id, 7u);
  EXPECT_EQ(seen[1].fds, 0);
  EXPECT_NE(seen[0].request.tag, seen[1].request.tag);
  EXPECT_EQ(OpenFds(), before);
}

TEST(SharedBufferTest, RefusalIsTheDaemonsCodeAndNothingLeaks) {
  const int before = OpenFds();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  std::vector<Seen> seen;
  std::thread daemon = FakeDaemon(sv[1], 1, &seen, [](const Seen& x) {
    shm_wire::Reply r = Ok(x);
    r.buffer_id = 0;
    r.error = 22;
    r.code = 8;
    r.message = "the daemon's cap of 16 GiB";
    return r;
  });
  auto buffer = SharedBuffer::CreateOnSocket(sv[0], 4096);
  daemon.join();
  close(sv[1]);
  ASSERT_FALSE(buffer.ok());
  EXPECT_EQ(buffer.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(buffer.status().message().find("TOTAL_BYTES_EXCEEDED"),
            std::string::npos)
      << buffer.status();
  EXPECT_EQ(OpenFds(), before);
}

TEST(SharedBufferTest, ClosedConnectionIsUnavailable) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  close(sv[1]);
  auto buffer = SharedBuffer::CreateOnSocket(sv[0], 4096);
  EXPECT_EQ(buffer.status().code(), absl::StatusCode::kUnavailable);
  auto none = SharedBuffer::Create("/nonexistent/gpumig-shm.sock", 4096);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(SharedBuffer::Create("", 4096).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gpumig::client
