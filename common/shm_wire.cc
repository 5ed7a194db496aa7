#include "common/shm_wire.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace gpumig {
namespace shm_wire {
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

struct ErrorEntry {
  const char* name;
  absl::StatusCode code;
};

using C = absl::StatusCode;
// docs/api.md's error table, indexed by value.
// clang-format off
constexpr ErrorEntry kErrors[kShmErrorCount] = {
    {"OK",                         C::kOk},
    {"BAD_RECORD_SIZE",            C::kInvalidArgument},
    {"BAD_MAGIC",                  C::kInvalidArgument},
    {"BAD_VERSION",                C::kUnimplemented},
    {"BAD_OP",                     C::kInvalidArgument},
    {"BAD_FIELDS",                 C::kInvalidArgument},
    {"NO_FD",                      C::kInvalidArgument},
    {"TOO_MANY_FDS",               C::kInvalidArgument},
    {"CONTROL_TRUNCATED",          C::kInvalidArgument},
    {"UNEXPECTED_FD",              C::kInvalidArgument},
    {"NOT_REGULAR_FILE",           C::kInvalidArgument},
    {"NOT_TMPFS",                  C::kInvalidArgument},
    {"HUGETLBFS",                  C::kInvalidArgument},
    {"MISSING_SEAL_SHRINK",        C::kFailedPrecondition},
    {"MISSING_SEAL_GROW",          C::kFailedPrecondition},
    {"MISSING_SEAL_SEAL",          C::kFailedPrecondition},
    {"WRITE_SEALED",               C::kFailedPrecondition},
    {"NOT_READ_WRITE",             C::kFailedPrecondition},
    {"BAD_SIZE",                   C::kInvalidArgument},
    {"SIZE_MISMATCH",              C::kInvalidArgument},
    {"PRINCIPAL_BUFFERS_EXCEEDED", C::kResourceExhausted},
    {"PRINCIPAL_BYTES_EXCEEDED",   C::kResourceExhausted},
    {"TOTAL_BYTES_EXCEEDED",       C::kResourceExhausted},
    {"MAP_FAILED",                 C::kResourceExhausted},
    {"PIN_FAILED",                 C::kResourceExhausted},
    {"UNKNOWN_BUFFER",             C::kNotFound},
    {"SHUTTING_DOWN",              C::kUnavailable},
    {"SYSTEM_ERROR",               C::kInternal},
};
// clang-format on

}  // namespace

const char* ShmErrorName(ShmError e) {
  const auto i = static_cast<uint32_t>(e);
  return i < kShmErrorCount ? kErrors[i].name : "UNKNOWN";
}

absl::StatusCode ShmErrorCode(ShmError e) {
  const auto i = static_cast<uint32_t>(e);
  return i < kShmErrorCount ? kErrors[i].code : C::kInvalidArgument;
}

std::string ErrorName(uint32_t error) {
  if (error < kShmErrorCount) return kErrors[error].name;
  return absl::StrCat("UNKNOWN_ERROR_", error);
}

std::array<uint8_t, kRequestBytes> EncodeRequest(const Request& r) {
  std::array<uint8_t, kRequestBytes> b{};
  Put<uint32_t>(&b[0], r.magic);
  Put<uint16_t>(&b[4], r.version);
  Put<uint16_t>(&b[6], r.op);
  Put<uint64_t>(&b[8], r.tag);
  Put<uint64_t>(&b[16], r.size);
  Put<uint64_t>(&b[24], r.buffer_id);
  return b;
}

std::array<uint8_t, kReplyBytes> EncodeReply(const Reply& r) {
  std::array<uint8_t, kReplyBytes> b{};
  Put<uint32_t>(&b[0], r.magic);
  Put<uint16_t>(&b[4], r.version);
  Put<uint16_t>(&b[6], r.op);
  Put<uint64_t>(&b[8], r.tag);
  Put<uint32_t>(&b[16], r.error);
  Put<uint32_t>(&b[20], r.code);
  Put<uint64_t>(&b[24], r.buffer_id);
  Put<uint64_t>(&b[32], r.size);
  const size_t n = std::min(r.message.size(), kReplyMessageBytes - 1);
  std::memcpy(&b[40], r.message.data(), n);
  return b;
}

Request DecodeRequest(const uint8_t* p) {
  Request r;
  r.magic = Get<uint32_t>(p);
  r.version = Get<uint16_t>(p + 4);
  r.op = Get<uint16_t>(p + 6);
  r.tag = Get<uint64_t>(p + 8);
  r.size = Get<uint64_t>(p + 16);
  r.buffer_id = Get<uint64_t>(p + 24);
  return r;
}

Reply DecodeReply(const uint8_t* p) {
  Reply r;
  r.magic = Get<uint32_t>(p);
  r.version = Get<uint16_t>(p + 4);
  r.op = Get<uint16_t>(p + 6);
  r.tag = Get<uint64_t>(p + 8);
  r.error = Get<uint32_t>(p + 16);
  r.code = Get<uint32_t>(p + 20);
  r.buffer_id = Get<uint64_t>(p + 24);
  r.size = Get<uint64_t>(p + 32);
  const char* m = reinterpret_cast<const char*>(p + 40);
  r.message.assign(m, strnlen(m, kReplyMessageBytes));
  return r;
}

absl::StatusOr<Reply> DecodeReply(absl::Span<const uint8_t> b) {
  if (b.size() != kReplyBytes) {
    return absl::InternalError(absl::StrCat("shared buffer socket: a reply of ",
                                            b.size(), " bytes, expected ",
                                            kReplyBytes));
  }
  Reply r = DecodeReply(b.data());
  if (r.magic != kMagic) {
    return absl::InternalError("shared buffer socket: bad reply magic");
  }
  if (r.version != kVersion) {
    return absl::InternalError(absl::StrCat(
        "shared buffer socket: reply version ", r.version, ", expected 1"));
  }
  return r;
}

absl::StatusOr<Request> DecodeRequest(absl::Span<const uint8_t> b) {
  if (b.size() != kRequestBytes) {
    return absl::InvalidArgumentError("request is not 32 bytes");
  }
  Request r = DecodeRequest(b.data());
  if (r.magic != kMagic) return absl::InvalidArgumentError("bad magic");
  if (r.version != kVersion) return absl::UnimplementedError("version");
  return r;
}

absl::Status ReplyStatus(const Reply& reply) {
  if (reply.error == 0) return absl::OkStatus();
  // A daemon that names an error must give a non-OK code; never report a
  // refusal as success.
  const absl::StatusCode code = reply.code == 0 || reply.code > 16
                                    ? C::kUnknown
                                    : static_cast<absl::StatusCode>(reply.code);
  const char* op = reply.op == kOpUnregister ? "unregister" : "register";
  return absl::Status(code, absl::StrCat("shared buffer ", op,
                                         " refused: ", ErrorName(reply.error),
                                         ": ", reply.message));
}

}  // namespace shm_wire
}  // namespace gpumig
