#include "common/shm_wire.h"

#include <cstdint>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace shm_wire {
namespace {

TEST(ShmWireTest, RequestLayoutIsByteExactAndRoundTrips) {
  Request r;
  r.op = kOpRegister;
  r.tag = 0x0102030405060708;
  r.size = 0x10000;
  auto b = EncodeRequest(r);
  EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "GMSB");
  EXPECT_EQ(b[4], 1);
  EXPECT_EQ(b[6], 1);
  EXPECT_EQ(b[8], 0x08);
  EXPECT_EQ(b[15], 0x01);
  EXPECT_EQ(b[18], 0x01);  // size 0x10000, little-endian at 16
  absl::StatusOr<Request> d = DecodeRequest(absl::MakeConstSpan(b));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->op, kOpRegister);
  EXPECT_EQ(d->tag, r.tag);
  EXPECT_EQ(d->size, r.size);
  EXPECT_EQ(d->buffer_id, 0u);
}

TEST(ShmWireTest, ReplyKeepsANulAndRoundTrips) {
  Reply r;
  r.op = kOpUnregister;
  r.tag = 7;
  r.error = static_cast<uint32_t>(ShmError::kUnknownBuffer);
  r.code = static_cast<uint32_t>(absl::StatusCode::kNotFound);
  r.buffer_id = 0x1122334455667788;
  r.message = std::string(200, 'm');
  auto b = EncodeReply(r);
  EXPECT_EQ(b[16], 25);
  EXPECT_EQ(b[20], 5);
  EXPECT_EQ(b[24], 0x88);
  EXPECT_EQ(b[127], 0) << "the message field always ends in a NUL";
  absl::StatusOr<Reply> d = DecodeReply(absl::MakeConstSpan(b));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->message, std::string(kReplyMessageBytes - 1, 'm'));
  EXPECT_EQ(d->buffer_id, r.buffer_id);
  absl::Status s = ReplyStatus(*d);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message().substr(0, 48),
            "shared buffer unregister refused: UNKNOWN_BUFFER");
}

TEST(ShmWireTest, CheckedDecodersRefuseOtherProtocols) {
  auto reply = EncodeReply(Reply{});
  EXPECT_EQ(DecodeReply(absl::MakeConstSpan(reply.data(), 127)).status().code(),
            absl::StatusCode::kInternal);
  reply[4] = 2;  // version 2
  EXPECT_EQ(DecodeReply(absl::MakeConstSpan(reply)).status().code(),
            absl::StatusCode::kInternal);
  auto request = EncodeRequest(Request{});
  EXPECT_EQ(
      DecodeRequest(absl::MakeConstSpan(request.data(), 31)).status().code(),
      absl::StatusCode::kInvalidArgument);
  request[4] = 9;
  EXPECT_EQ(DecodeRequest(absl::MakeConstSpan(request)).status().code(),
            absl::StatusCode::kUnimplemented);
  request[0] ^= 1;
  EXPECT_EQ(DecodeRequest(absl::MakeConstSpan(request)).status().code(),
            absl::StatusCode::kInvalidArgument);
  // The unchecked decoder hands the fields over as they are.
  EXPECT_EQ(DecodeRequest(request.data()).version, 9);
}

TEST(ShmWireTest, ErrorTableMatchesTheDocumentedValues) {
  std::set<std::string> names;
  for (uint32_t e = 0; e < kShmErrorCount; ++e) {
    EXPECT_TRUE(names.insert(ShmErrorName(static_cast<ShmError>(e))).second)
        << e;
    EXPECT_EQ(ErrorName(e), ShmErrorName(static_cast<ShmError>(e)));
  }
  EXPECT_STREQ(ShmErrorName(ShmError::kOk), "OK");
  EXPECT_STREQ(ShmErrorName(ShmError::kTooManyFds), "TOO_MANY_FDS");
  EXPECT_STREQ(ShmErrorName(ShmError::kSystemError), "SYSTEM_ERROR");
  EXPECT_EQ(ShmErrorCode(ShmError::kOk), absl::StatusCode::kOk);
  EXPECT_EQ(ShmErrorCode(ShmError::kBadVersion),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(ShmErrorCode(ShmError::kMissingSealGrow),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ShmErrorCode(ShmError::kPinFailed),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ShmErrorCode(ShmError::kUnknownBuffer),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ShmErrorCode(ShmError::kShuttingDown),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(ShmErrorCode(ShmError::kSystemError), absl::StatusCode::kInternal);
  EXPECT_EQ(ShmErrorCode(ShmError::kNotTmpfs),
            absl::StatusCode::kInvalidArgument);
  // A value from a newer daemon is named, never mistaken for another.
  EXPECT_STREQ(ShmErrorName(static_cast<ShmError>(kShmErrorCount)), "UNKNOWN");
  EXPECT_EQ(ErrorName(kShmErrorCount), "UNKNOWN_ERROR_28");
}

TEST(ShmWireTest, ARefusalIsNeverReportedAsOk) {
  Reply r;
  r.error = static_cast<uint32_t>(ShmError::kBadSize);
  r.code = 0;
  EXPECT_EQ(ReplyStatus(r).code(), absl::StatusCode::kUnknown);
  r.code = 99;
  EXPECT_EQ(ReplyStatus(r).code(), absl::StatusCode::kUnknown);
  r.error = 0;
  EXPECT_TRUE(ReplyStatus(r).ok());
}

}  // namespace
}  // namespace shm_wire
}  // namespace gpumig
