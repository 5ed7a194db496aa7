#include "core/shm/registration_protocol.h"

#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace gpumig {
namespace shm {
namespace {

template <typename T>
void Put(uint8_t* p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) {
    p[i] = static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i));
  }
}

template <typename T>
T Get(const uint8_t* p) {
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t{p[i]} << (8 * i);
  return static_cast<T>(v);
}

void CloseAll(std::vector<int>* fds) {
  for (int fd : *fds) close(fd);
  fds->clear();
}

}  // namespace

std::array<uint8_t, kRequestSize> EncodeRequest(const ShmRequest& r) {
  std::array<uint8_t, kRequestSize> b{};
  Put<uint32_t>(&b[0], r.magic);
  Put<uint16_t>(&b[4], r.version);
  Put<uint16_t>(&b[6], r.op);
  Put<uint64_t>(&b[8], r.tag);
  Put<uint64_t>(&b[16], r.size);
  Put<uint64_t>(&b[24], r.buffer_id);
  return b;
}

ShmRequest DecodeRequest(const uint8_t* p) {
  ShmRequest r;
  r.magic = Get<uint32_t>(p);
  r.version = Get<uint16_t>(p + 4);
  r.op = Get<uint16_t>(p + 6);
  r.tag = Get<uint64_t>(p + 8);
  r.size = Get<uint64_t>(p + 16);
  r.buffer_id = Get<uint64_t>(p + 24);
  return r;
}

std::array<uint8_t, kReplySize> EncodeReply(const ShmReply& r) {
  std::array<uint8_t, kReplySize> b{};
  Put<uint32_t>(&b[0], r.magic);
  Put<uint16_t>(&b[4], r.version);
  Put<uint16_t>(&b[6], r.op);
  Put<uint64_t>(&b[8], r.tag);
  Put<uint32_t>(&b[16], r.error);
  Put<uint32_t>(&b[20], r.code);
  Put<uint64_t>(&b[24], r.buffer_id);
  Put<uint64_t>(&b[32], r.size);
  // Leave at least one NUL.
  size_t n = std::min(r.message.size(), kReplyMessageSize - 1);
  std::memcpy(&b[40], r.message.data(), n);
  return b;
}

ShmReply DecodeReply(const uint8_t* p) {
  ShmReply r;
  r.magic = Get<uint32_t>(p);
  r.version = Get<uint16_t>(p + 4);
  r.op = Get<uint16_t>(p + 6);
  r.tag = Get<uint64_t>(p + 8);
  r.error = Get<uint32_t>(p + 16);
  r.code = Get<uint32_t>(p + 20);
  r.buffer_id = Get<uint64_t>(p + 24);
  r.size = Get<uint64_t>(p + 32);
  const char* m = reinterpret_cast<const char*>(p + 40);
  r.message.assign(m, strnlen(m, kReplyMessageSize));
  return r;
}

ShmReply HandleRegistrationMessage(SharedBufferRegistry* reg, uint32_t uid,
                                   uint64_t conn, ShmMessage msg) {
  ShmReply rep;
  auto fail = [&](ShmError e, std::string why = "") {
    CloseAll(&msg.fds);
    rep.error = static_cast<uint32_t>(e);
    rep.code = static_cast<uint32_t>(ShmErrorCode(e));
    rep.buffer_id = 0;
    rep.size = 0;
    rep.message = why.empty() ? ShmErrorName(e)
                              : absl::StrCat(ShmErrorName(e), ": ", why);
    return rep;
  };
  if (msg.data_truncated || msg.len != kRequestSize || msg.data == nullptr) {
    return fail(ShmError::kBadRecordSize, "a request is 32 bytes");
  }
  ShmRequest req = DecodeRequest(msg.data);
  if (req.magic != kShmMagic) return fail(ShmError::kBadMagic);
  rep.op = req.op;
  rep.tag = req.tag;
  if (req.version != kShmVersion) {
    return fail(ShmError::kBadVersion, "only version 1");
  }
  if (req.op != kOpRegister && req.op != kOpUnregister) {
    return fail(ShmError::kBadOp);
  }
  if (req.op == kOpUnregister) {
    if (!msg.fds.empty() || msg.control_truncated || msg.other_control) {
      return fail(ShmError::kUnexpectedFd);
    }
    if (req.size != 0) return fail(ShmError::kBadFields, "size must be 0");
    ShmError e = reg->Unregister(conn, req.buffer_id);
    if (e != ShmError::kOk) return fail(e);
    rep.buffer_id = req.buffer_id;
    rep.message = "OK";
    return rep;
  }
  // REGISTER.
  if (req.buffer_id != 0) {
    return fail(ShmError::kBadFields, "buffer_id must be 0");
  }
  if (msg.control_truncated) return fail(ShmError::kControlTruncated);
  if (msg.other_control) return fail(ShmError::kUnexpectedFd);
  if (msg.fds.empty()) return fail(ShmError::kNoFd);
  if (msg.fds.size() > 1) return fail(ShmError::kTooManyFds);
  int fd = msg.fds[0];
  msg.fds.clear();  // Register owns it now.
  uint64_t id = 0;
  ShmError e = reg->Register(uid, conn, fd, req.size, &id);
  if (e != ShmError::kOk) return fail(e);
  rep.buffer_id = id;
  rep.size = req.size;
  rep.message = "OK";
  return rep;
}

}  // namespace shm
}  // namespace gpumig
