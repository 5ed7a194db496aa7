// Fuzzes the shared-buffer registration protocol (core/shm): each input is
// one message -- a record of any length and a list of fds of every kind
// (good and badly sealed memfds, pipe, socket, eventfd, /dev/zero, a
// read-only reopen) -- handled by HandleRegistrationMessage against one
// registry, as the registration socket would. After each input the
// connection is closed and the process must hold exactly the fds and
// mappings it held before: every received fd closed on every path, every
// buffer unmapped. A crash, a leak or an OK reply to a bad fd aborts.
//
// Input layout: byte 0: flags (bit 0 control truncated, bit 1 other
// control, bit 2 data truncated); byte 1: fd count (mod 4); bytes 2..: one
// kind byte per fd; then the record bytes (a REGISTER's size field is
// forced to the memfd size when bit 3 of byte 0 is set, so deep paths are
// reached).
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/shm/registration_protocol.h"
#include "core/shm/shared_buffer_registry.h"
#include "core/shm/test_registrar.h"

namespace {

using namespace gpumig::shm;  // NOLINT: test harness

int MakeFd(uint8_t kind) {
  switch (kind % 8) {
    case 0:
      return MakeMemfd(4096, kGoodSeals);
    case 1:
      return MakeMemfd(8192, kind >> 3 & 0x1f);  // any seal combination
    case 2: {
      int p[2];
      if (pipe2(p, O_CLOEXEC) != 0) return -1;
      close(p[1]);
      return p[0];
    }
    case 3: {
      int s[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) return -1;
      close(s[1]);
      return s[0];
    }
    case 4:
      return eventfd(0, EFD_CLOEXEC);
    case 5:
      return open("/dev/zero", O_RDWR | O_CLOEXEC);
    case 6: {
      int fd = MakeMemfd(4096, kGoodSeals);
      std::string p = "/proc/self/fd/" + std::to_string(fd);
      int ro = open(p.c_str(), O_RDONLY | O_CLOEXEC);
      close(fd);
      return ro;
    }
    default:
      return MakeMemfd(4096, 0, /*allow_sealing=*/false);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static SharedBufferRegistry* reg = [] {
    ShmLimits l;
    l.max_buffers_per_principal = 4;
    l.max_bytes_per_principal = 1 << 20;
    l.max_total_bytes = 1 << 20;
    return new SharedBufferRegistry(l);
  }();
  if (size < 2) return 0;
  const int fds0 = CountOpenFds();
  const int maps0 = CountMemfdMaps();
  const uint8_t flags = data[0];
  const size_t nfds = data[1] % 4;
  size_t pos = 2;
  ShmMessage msg;
  std::vector<uint8_t> kinds;
  for (size_t i = 0; i < nfds && pos < size; ++i, ++pos) {
    kinds.push_back(data[pos]);
    int fd = MakeFd(data[pos]);
    if (fd >= 0) msg.fds.push_back(fd);
  }
  std::vector<uint8_t> rec(data + pos, data + size);
  if ((flags & 8) && rec.size() == kRequestSize && !kinds.empty()) {
    const uint64_t sz = kinds[0] % 8 == 1 ? 8192 : 4096;
    std::memcpy(&rec[16], &sz, 8);  // little-endian hosts only
  }
  msg.data = rec.data();
  msg.len = rec.size();
  msg.control_truncated = flags & 1;
  msg.other_control = flags & 2;
  msg.data_truncated = flags & 4;
  const uint64_t conn = reg->OpenConnection();
  ShmReply rep = HandleRegistrationMessage(reg, 0, conn, std::move(msg));
  if (rep.error == 0 && rep.buffer_id != 0) {
    // Only a well-sealed read-write memfd of the declared size may pass.
    if (kinds.size() != 1 ||
        !(kinds[0] % 8 == 0 ||
          (kinds[0] % 8 == 1 && ((kinds[0] >> 3) & 0x1f) == kGoodSeals))) {
      std::fprintf(stderr, "accepted fd kind %u\n",
                   kinds.empty() ? 0 : kinds[0]);
      std::abort();
    }
    if (!reg->Acquire(0, rep.buffer_id).ok()) std::abort();
  }
  reg->CloseConnection(conn);
  if (reg->stats().buffers != 0 || CountOpenFds() != fds0 ||
      CountMemfdMaps() != maps0) {
    std::fprintf(stderr, "leak: fds %d -> %d, maps %d -> %d, buffers %llu\n",
                 fds0, CountOpenFds(), maps0, CountMemfdMaps(),
                 static_cast<unsigned long long>(reg->stats().buffers));
    std::abort();
  }
  return 0;
}
