// The registration socket's wire protocol (docs/api.md, "Records"): fixed
// 32-byte little-endian requests, 128-byte replies, REGISTER carrying one
// fd. HandleRegistrationMessage turns one received message into one reply
// and owns every fd it is given (all are closed or handed to the registry,
// which closes them after mapping).
//
// Thread-safety: the functions are thread-safe (the registry is).
#ifndef GPUMIG_CORE_SHM_REGISTRATION_PROTOCOL_H_
#define GPUMIG_CORE_SHM_REGISTRATION_PROTOCOL_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/shm/shared_buffer_registry.h"

namespace gpumig {
namespace shm {

inline constexpr uint32_t kShmMagic = 0x42534d47;  // "GMSB" little-endian
inline constexpr uint16_t kShmVersion = 1;
inline constexpr uint16_t kOpRegister = 1;
inline constexpr uint16_t kOpUnregister = 2;
inline constexpr size_t kRequestSize = 32;
inline constexpr size_t kReplySize = 128;
inline constexpr size_t kReplyMessageSize = 88;

struct ShmRequest {
  uint32_t magic = kShmMagic;
  uint16_t version = kShmVersion;
  uint16_t op = 0;
  uint64_t tag = 0;
  uint64_t size = 0;
  uint64_t buffer_id = 0;
};

struct ShmReply {
  uint32_t magic = kShmMagic;
  uint16_t version = kShmVersion;
  uint16_t op = 0;
  uint64_t tag = 0;
  uint32_t error = 0;
  uint32_t code = 0;
  uint64_t buffer_id = 0;
  uint64_t size = 0;
  std::string message;  // at most 88 bytes on the wire
};

std::array<uint8_t, kRequestSize> EncodeRequest(const ShmRequest& r);
ShmRequest DecodeRequest(const uint8_t* p);  // p: kRequestSize bytes
std::array<uint8_t, kReplySize> EncodeReply(const ShmReply& r);
ShmReply DecodeReply(const uint8_t* p);  // p: kReplySize bytes

// One received message. `len` is the bytes received; `data_truncated` is
// MSG_TRUNC; `fds` every fd received (owned: closed or registered);
// `control_truncated` is MSG_CTRUNC; `other_control` a control message
// other than SCM_RIGHTS.
struct ShmMessage {
  const uint8_t* data = nullptr;
  size_t len = 0;
  bool data_truncated = false;
  std::vector<int> fds;
  bool control_truncated = false;
  bool other_control = false;
};

ShmReply HandleRegistrationMessage(SharedBufferRegistry* reg, uint32_t uid,
                                   uint64_t conn, ShmMessage msg);

}  // namespace shm
}  // namespace gpumig

#endif  // GPUMIG_CORE_SHM_REGISTRATION_PROTOCOL_H_
