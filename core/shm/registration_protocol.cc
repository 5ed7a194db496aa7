#include "core/shm/registration_protocol.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace gpumig {
namespace shm {
namespace {

void CloseAll(std::vector<int>* fds) {
  for (int fd : *fds) close(fd);
  fds->clear();
}

}  // namespace

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
