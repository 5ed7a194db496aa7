// RegistrationServer: the SOCK_SEQPACKET unix socket local clients register
// shared buffers on (docs/api.md, "Shared buffers"). One accept thread and
// one thread per connection; the peer's uid (SO_PEERCRED at accept) owns
// the connection's buffers, which end when the connection closes.
//
// Thread-safety: Start and Stop from one thread; the rest is internal.
#ifndef GPUMIG_CORE_SHM_REGISTRATION_SERVER_H_
#define GPUMIG_CORE_SHM_REGISTRATION_SERVER_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "core/shm/shared_buffer_registry.h"

namespace gpumig {
namespace shm {

class RegistrationServer {
 public:
  // `reg` must outlive the server.
  explicit RegistrationServer(SharedBufferRegistry* reg);
  ~RegistrationServer();  // Stop()

  // Binds `path` (an existing stale socket there is replaced), chmods it to
  // `mode` and chowns its group to `gid` (-1: unchanged), listens and
  // starts serving. INTERNAL/FAILED_PRECONDITION on a system call failure.
  absl::Status Start(const std::string& path, mode_t mode, gid_t gid);
  // Stops accepting, closes every connection (their buffers end), joins
  // the threads and removes the socket file. Idempotent.
  void Stop();

  const std::string& path() const { return path_; }

 private:
  struct Conn {
    int fd = -1;
    std::thread thread;
    bool done = false;
  };
  void AcceptLoop();
  void Serve(uint64_t conn, int fd, uint32_t uid);

  SharedBufferRegistry* const reg_;
  std::string path_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: Stop() wakes the accept loop
  std::thread accept_thread_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<uint64_t, std::unique_ptr<Conn>> conns_ ABSL_GUARDED_BY(mu_);
};

}  // namespace shm
}  // namespace gpumig

#endif  // GPUMIG_CORE_SHM_REGISTRATION_SERVER_H_
