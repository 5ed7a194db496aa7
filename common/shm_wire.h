// The shared-buffer registration socket's wire protocol (docs/api.md
// "Shared buffers", "Records"): the records, their byte layout and the error
// table, one definition for the daemon (core/shm) and the client library
// (client/shared_buffer).
//
// Records are little-endian, fixed size, no padding: a request is 32 bytes,
// a reply 128. Every error value has one name and one google.rpc.Code; a
// refused request changes nothing.
//
// Thread-safe: every function is pure.
#ifndef GPUMIG_COMMON_SHM_WIRE_H_
#define GPUMIG_COMMON_SHM_WIRE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace gpumig {
namespace shm_wire {

inline constexpr uint32_t kMagic = 0x42534d47;  // bytes "GMSB"
inline constexpr uint16_t kVersion = 1;
inline constexpr uint16_t kOpRegister = 1;
inline constexpr uint16_t kOpUnregister = 2;
inline constexpr size_t kRequestBytes = 32;
inline constexpr size_t kReplyBytes = 128;
// The message field; an encoded message keeps at least one NUL, so it
// carries at most kReplyMessageBytes - 1 bytes of text.
inline constexpr size_t kReplyMessageBytes = 88;
// A buffer's size is a non-zero multiple of this.
inline constexpr uint64_t kPageBytes = 4096;

// The reply's error field: docs/api.md's error table, value for value.
enum class ShmError : uint32_t {
  kOk = 0,
  kBadRecordSize = 1,
  kBadMagic = 2,
  kBadVersion = 3,
  kBadOp = 4,
  kBadFields = 5,
  kNoFd = 6,
  kTooManyFds = 7,
  kControlTruncated = 8,
  kUnexpectedFd = 9,
  kNotRegularFile = 10,
  kNotTmpfs = 11,
  kHugetlbfs = 12,
  kMissingSealShrink = 13,
  kMissingSealGrow = 14,
  kMissingSealSeal = 15,
  kWriteSealed = 16,
  kNotReadWrite = 17,
  kBadSize = 18,
  kSizeMismatch = 19,
  kPrincipalBuffersExceeded = 20,
  kPrincipalBytesExceeded = 21,
  kTotalBytesExceeded = 22,
  kMapFailed = 23,
  kPinFailed = 24,
  kUnknownBuffer = 25,
  kShuttingDown = 26,
  kSystemError = 27,
};
// One past the largest error value.
inline constexpr uint32_t kShmErrorCount = 28;

// The table's name ("NOT_TMPFS"); "UNKNOWN" for a value outside it.
const char* ShmErrorName(ShmError e);
// The google.rpc.Code the table pairs with `e` (INVALID_ARGUMENT for a value
// outside it).
absl::StatusCode ShmErrorCode(ShmError e);
// The name of a received error value: ShmErrorName, or "UNKNOWN_ERROR_<n>"
// for a value this side does not know (a newer daemon).
std::string ErrorName(uint32_t error);

struct Request {
  uint32_t magic = kMagic;
  uint16_t version = kVersion;
  uint16_t op = 0;
  uint64_t tag = 0;        // the client's, echoed in the reply
  uint64_t size = 0;       // REGISTER: the buffer's size; else 0
  uint64_t buffer_id = 0;  // UNREGISTER: the buffer; else 0
};

struct Reply {
  uint32_t magic = kMagic;
  uint16_t version = kVersion;
  uint16_t op = 0;
  uint64_t tag = 0;
  uint32_t error = 0;  // ShmError; 0 = OK
  uint32_t code = 0;   // google.rpc.Code; 0 = OK
  uint64_t buffer_id = 0;
  uint64_t size = 0;
  std::string message;  // at most kReplyMessageBytes - 1 bytes on the wire
};

std::array<uint8_t, kRequestBytes> EncodeRequest(const Request& request);
// Writes the first kReplyMessageBytes - 1 bytes of the message.
std::array<uint8_t, kReplyBytes> EncodeReply(const Reply& reply);

// The fields of the record at `p` (kRequestBytes / kReplyBytes readable
// bytes) as they are: the caller checks magic and version.
Request DecodeRequest(const uint8_t* p);
Reply DecodeReply(const uint8_t* p);

// Decodes a reply as the client receives it.
// INTERNAL: not exactly kReplyBytes, bad magic or version (a daemon speaking
//   another protocol).
absl::StatusOr<Reply> DecodeReply(absl::Span<const uint8_t> bytes);
// The same checks for a request (for fakes in tests).
// INVALID_ARGUMENT: not exactly kRequestBytes, or bad magic.
// UNIMPLEMENTED: another version.
absl::StatusOr<Request> DecodeRequest(absl::Span<const uint8_t> bytes);

// The reply as a status: OK for error 0; else the reply's google.rpc.Code
// (UNKNOWN where a named error came with code 0 or an unknown code) with
// "shared buffer <op> refused: <NAME>: <message>".
absl::Status ReplyStatus(const Reply& reply);

}  // namespace shm_wire
}  // namespace gpumig

#endif  // GPUMIG_COMMON_SHM_WIRE_H_
