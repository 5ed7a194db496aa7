// SharedBufferRegistry: the daemon's table of shared buffers.
//
// A shared buffer is a sealed memfd a local client hands the daemon over the
// registration socket (docs/api.md, "Shared buffers"). The registry checks
// the fd (ValidateBufferFd), maps it MAP_SHARED PROT_READ|PROT_WRITE (never
// PROT_EXEC), closes the fd and keeps the mapping until the buffer ends:
// UNREGISTER, the close of the connection that registered it, or the
// registry's destruction (daemon exit). Copies (WriteFromBuffer /
// ReadToBuffer) hold a BufferRef; ending a buffer waits for those to drop
// before it unmaps, so a copy never touches an unmapped page.
//
// Why the checks make the daemon SIGBUS-free: the file is on tmpfs (no I/O
// errors), F_SEAL_SHRINK forbids truncation below the mapping, and a hole a
// client punches (fallocate PUNCH_HOLE) reads back as zeros on tmpfs: the
// daemon may copy zeros, never fault.
//
// Thread-safety: thread-safe.
#ifndef GPUMIG_CORE_SHM_SHARED_BUFFER_REGISTRY_H_
#define GPUMIG_CORE_SHM_SHARED_BUFFER_REGISTRY_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/shm_wire.h"

namespace gpumig {
namespace shm {

// Registration errors, their names and google.rpc.Codes: the wire values of
// docs/api.md's error table (common/shm_wire.h).
using shm_wire::ShmError;
using shm_wire::ShmErrorCode;
using shm_wire::ShmErrorName;

inline constexpr uint64_t kShmPageSize = shm_wire::kPageBytes;

// Checks `fd` as docs/api.md lists, in that order, against `declared_size`.
// Does not close `fd`. kOk when it may be registered (limits aside).
ShmError ValidateBufferFd(int fd, uint64_t declared_size);

struct ShmLimits {
  uint64_t max_buffers_per_principal = 64;
  uint64_t max_bytes_per_principal = uint64_t{4} << 30;  // 4 GiB
  uint64_t max_total_bytes = uint64_t{16} << 30;         // 16 GiB
};

struct ShmStats {
  uint64_t buffers = 0;
  uint64_t bytes = 0;
  uint64_t connections = 0;
  uint64_t registrations = 0;
  uint64_t rejections = 0;
  uint64_t unregistrations = 0;
  uint64_t bytes_written = 0;
  uint64_t bytes_read = 0;
};

// Optional device hooks (cuda: cudaHostRegister / cudaHostUnregister). Pin
// runs after mmap; Unpin before munmap, after copies drained.
struct ShmPinHooks {
  std::function<absl::Status(void* addr, size_t len)> pin;
  std::function<void(void* addr, size_t len)> unpin;
};

class SharedBufferRegistry;

// A buffer held for one copy. While any ref lives the mapping stays.
class BufferRef {
 public:
  BufferRef() = default;
  BufferRef(BufferRef&& o) noexcept;
  BufferRef& operator=(BufferRef&& o) noexcept;
  BufferRef(const BufferRef&) = delete;
  BufferRef& operator=(const BufferRef&) = delete;
  ~BufferRef();

  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  friend class SharedBufferRegistry;
  SharedBufferRegistry* reg_ = nullptr;
  uint64_t id_ = 0;
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

class SharedBufferRegistry {
 public:
  explicit SharedBufferRegistry(ShmLimits limits, ShmPinHooks hooks = {});
  // Ends every buffer (waits for refs).
  ~SharedBufferRegistry();
  SharedBufferRegistry(const SharedBufferRegistry&) = delete;
  SharedBufferRegistry& operator=(const SharedBufferRegistry&) = delete;

  // A new connection id (never reused); counts in stats().connections.
  uint64_t OpenConnection();
  // Ends every buffer of `conn` (waiting for copies in flight).
  void CloseConnection(uint64_t conn);

  // Validates `fd` (ValidateBufferFd), applies the limits, maps it and
  // CLOSES `fd` on every path. On kOk sets *id. Counts a rejection
  // otherwise.
  ShmError Register(uint32_t uid, uint64_t conn, int fd, uint64_t size,
                    uint64_t* id);
  // Ends buffer `id` of `conn`, after its copies drained. kUnknownBuffer if
  // `conn` has no such buffer.
  ShmError Unregister(uint64_t conn, uint64_t id);

  // The buffer `id` for a copy by `uid`: NOT_FOUND if no such buffer (or it
  // is ending), PERMISSION_DENIED "permission denied" if another
  // principal's.
  absl::StatusOr<BufferRef> Acquire(uint32_t uid, uint64_t id);

  // Refuses new registrations with kShuttingDown.
  void Shutdown();

  void CountCopy(bool write, uint64_t bytes);
  // Entries of the per-principal tables (0 once every buffer ended; a
  // refused registration adds none).
  size_t PrincipalEntriesForTest() const;
  ShmStats stats() const;
  const ShmLimits& limits() const { return limits_; }

 private:
  friend class BufferRef;
  struct Buffer {
    uint32_t uid = 0;
    uint64_t conn = 0;
    uint8_t* data = nullptr;
    uint64_t size = 0;
    int refs = 0;
    bool ending = false;
  };
  void Release(uint64_t id);
  // Returns `size` bytes and one buffer of `uid` to the limits; drops the
  // principal's entries at zero.
  void UnreserveLocked(uint32_t uid, uint64_t size)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks, waits for refs, erases and unmaps `id`. Takes mu_.
  void End(uint64_t id);

  // Constant after construction.
  const ShmLimits limits_;
  const ShmPinHooks hooks_;

  // Locked through core/base/mutex.h (MutexLock, CondVarWait), so that
  // ThreadSanitizer sees its edges.
  mutable absl::Mutex mu_;
  // Signalled when a buffer's refs drop to 0 (End waits for it).
  absl::CondVar refs_cv_;
  std::map<uint64_t, Buffer> buffers_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_conn_ ABSL_GUARDED_BY(mu_) = 1;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // Bytes reserved by registrations under way plus registered buffers.
  std::map<uint32_t, uint64_t> principal_bytes_ ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, uint64_t> principal_count_ ABSL_GUARDED_BY(mu_);
  uint64_t total_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  ShmStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace shm
}  // namespace gpumig

#endif  // GPUMIG_CORE_SHM_SHARED_BUFFER_REGISTRY_H_
