// SharedBuffer: a client-owned sealed memfd registered with gpumigd so that
// ObjectService.WriteFromBuffer / ReadToBuffer move object content by one
// memcpy (docs/api.md "Shared buffers").
//
// A SharedBuffer creates a memfd (MFD_CLOEXEC | MFD_ALLOW_SEALING), sizes it
// with fallocate (the pages exist before the first copy), maps it MAP_SHARED
// read-write, seals it SHRINK | GROW | SEAL, connects to the daemon's
// registration socket (GetInfo().shared_buffer_socket, SOCK_SEQPACKET),
// sends one REGISTER record carrying exactly that fd, and keeps the
// connection: the buffer lives as long as it. Destruction sends UNREGISTER
// (which returns once the daemon's copies in flight have drained), then
// closes the connection, unmaps and closes the memfd.
//
// Thread-safety: the bytes (span()) may be used from any thread; the object
// itself is not thread-safe (one owner; movable, not copyable).
#ifndef GPUMIG_CLIENT_SHARED_BUFFER_H_
#define GPUMIG_CLIENT_SHARED_BUFFER_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/shm_wire.h"

namespace gpumig::client {

// The registration protocol's records are common/shm_wire.h's
// (gpumig::shm_wire, which code in this namespace names as shm_wire::).

// Creates a memfd of `size` bytes (a non-zero multiple of 4096), allocated
// with fallocate and sealed F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, as the
// daemon requires. Returns the fd (O_RDWR, close-on-exec); the caller owns it.
// INVALID_ARGUMENT: bad size. RESOURCE_EXHAUSTED: no memory (ENOMEM/ENOSPC).
absl::StatusOr<int> CreateSealedMemfd(uint64_t size);

class SharedBuffer {
 public:
  // Creates a buffer of `size` bytes (rounded up to a multiple of 4096) and
  // registers it on the registration socket at `socket_path`.
  //
  // INVALID_ARGUMENT: size 0 or beyond 2^62; an empty socket path.
  // UNAVAILABLE: the socket cannot be reached (no daemon; the daemon runs
  //   without shared buffers).
  // RESOURCE_EXHAUSTED: no memory for the buffer; a daemon limit
  //   (PRINCIPAL_BUFFERS_EXCEEDED, PRINCIPAL_BYTES_EXCEEDED,
  //   TOTAL_BYTES_EXCEEDED, MAP_FAILED, PIN_FAILED).
  // Any other refusal: the daemon's code and "shared buffer register
  // refused: <NAME>: <message>".
  static absl::StatusOr<SharedBuffer> Create(const std::string& socket_path,
                                             uint64_t size);
  // The same on an already connected SOCK_SEQPACKET socket, which it takes
  // (closed on failure too). For tests and callers that connect themselves.
  static absl::StatusOr<SharedBuffer> CreateOnSocket(int socket_fd,
                                                     uint64_t size);

  SharedBuffer() = default;  // empty: valid() is false
  ~SharedBuffer();
  SharedBuffer(SharedBuffer&& other) noexcept;
  SharedBuffer& operator=(SharedBuffer&& other) noexcept;
  SharedBuffer(const SharedBuffer&) = delete;
  SharedBuffer& operator=(const SharedBuffer&) = delete;

  bool valid() const { return data_ != nullptr; }
  // The daemon's id for it (non-zero), to name in WriteFrom/ReadInto.
  uint64_t id() const { return id_; }
  uint64_t size() const { return size_; }
  uint8_t* data() const { return data_; }
  absl::Span<uint8_t> span() const { return {data_, size_}; }

  // Unregisters now (waits for the daemon's copies in flight), then unmaps
  // and closes; the object becomes empty. Destruction does this and drops
  // the status. The daemon's error (NOT_FOUND UNKNOWN_BUFFER, ...) or
  // UNAVAILABLE when the connection broke; the buffer is released anyway.
  absl::Status Release();

 private:
  SharedBuffer(int socket_fd, int memfd, uint8_t* data, uint64_t size,
               uint64_t id)
      : socket_fd_(socket_fd),
        memfd_(memfd),
        data_(data),
        size_(size),
        id_(id) {}

  int socket_fd_ = -1;
  int memfd_ = -1;
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  uint64_t id_ = 0;
};

}  // namespace gpumig::client

#endif  // GPUMIG_CLIENT_SHARED_BUFFER_H_
