// The registration socket's wire protocol (docs/api.md, "Records"): fixed
// 32-byte little-endian requests, 128-byte replies, REGISTER carrying one
// fd. HandleRegistrationMessage turns one received message into one reply
// and owns every fd it is given (all are closed or handed to the registry,
// which closes them after mapping).
//
// Thread-safety: the functions are thread-safe (the registry is).
#ifndef GPUMIG_CORE_SHM_REGISTRATION_PROTOCOL_H_
#define GPUMIG_CORE_SHM_REGISTRATION_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/shm_wire.h"
#include "core/shm/shared_buffer_registry.h"

namespace gpumig {
namespace shm {

// The records are common/shm_wire.h's; these are their names in core/shm.
inline constexpr uint32_t kShmMagic = shm_wire::kMagic;
inline constexpr uint16_t kShmVersion = shm_wire::kVersion;
inline constexpr uint16_t kOpRegister = shm_wire::kOpRegister;
inline constexpr uint16_t kOpUnregister = shm_wire::kOpUnregister;
inline constexpr size_t kRequestSize = shm_wire::kRequestBytes;
inline constexpr size_t kReplySize = shm_wire::kReplyBytes;
inline constexpr size_t kReplyMessageSize = shm_wire::kReplyMessageBytes;

using ShmRequest = shm_wire::Request;
using ShmReply = shm_wire::Reply;  // at most 87 message bytes on the wire

using shm_wire::DecodeReply;    // DecodeReply(p): p holds kReplySize bytes
using shm_wire::DecodeRequest;  // DecodeRequest(p): p holds kRequestSize
using shm_wire::EncodeReply;
using shm_wire::EncodeRequest;

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
