#include "core/shm/shared_buffer_registry.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <utility>
#include <vector>

#include "core/base/mutex.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

namespace gpumig {
namespace shm {

ShmError ValidateBufferFd(int fd, uint64_t declared_size) {
  struct stat st;
  if (fstat(fd, &st) != 0) return ShmError::kSystemError;
  if (!S_ISREG(st.st_mode)) return ShmError::kNotRegularFile;
  struct statfs fs;
  if (fstatfs(fd, &fs) != 0) return ShmError::kSystemError;
  if (static_cast<uint64_t>(fs.f_type) ==
      static_cast<uint64_t>(HUGETLBFS_MAGIC)) {
    return ShmError::kHugetlbfs;
  }
  if (static_cast<uint64_t>(fs.f_type) != static_cast<uint64_t>(TMPFS_MAGIC)) {
    return ShmError::kNotTmpfs;
  }
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) {
    // EINVAL: a tmpfs file not created with MFD_ALLOW_SEALING has no seals.
    if (errno == EINVAL) return ShmError::kMissingSealShrink;
    return ShmError::kSystemError;
  }
  if (!(seals & F_SEAL_SHRINK)) return ShmError::kMissingSealShrink;
  if (!(seals & F_SEAL_GROW)) return ShmError::kMissingSealGrow;
  if (!(seals & F_SEAL_SEAL)) return ShmError::kMissingSealSeal;
  if (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) {
    return ShmError::kWriteSealed;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return ShmError::kSystemError;
  if ((fl & O_ACCMODE) != O_RDWR) return ShmError::kNotReadWrite;
  if (declared_size == 0 || declared_size % kShmPageSize != 0) {
    return ShmError::kBadSize;
  }
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) != declared_size) {
    return ShmError::kSizeMismatch;
  }
  return ShmError::kOk;
}

BufferRef::BufferRef(BufferRef&& o) noexcept
    : reg_(std::exchange(o.reg_, nullptr)),
      id_(o.id_),
      data_(o.data_),
      size_(o.size_) {}

BufferRef& BufferRef::operator=(BufferRef&& o) noexcept {
  if (this != &o) {
    if (reg_ != nullptr) reg_->Release(id_);
    reg_ = std::exchange(o.reg_, nullptr);
    id_ = o.id_;
    data_ = o.data_;
    size_ = o.size_;
  }
  return *this;
}

BufferRef::~BufferRef() {
  if (reg_ != nullptr) reg_->Release(id_);
}

SharedBufferRegistry::SharedBufferRegistry(ShmLimits limits, ShmPinHooks hooks)
    : limits_(limits), hooks_(std::move(hooks)) {}

SharedBufferRegistry::~SharedBufferRegistry() {
  Shutdown();
  std::vector<uint64_t> ids;
  {
    MutexLock l(&mu_);
    for (const auto& [id, b] : buffers_) ids.push_back(id);
  }
  for (uint64_t id : ids) End(id);
}

uint64_t SharedBufferRegistry::OpenConnection() {
  MutexLock l(&mu_);
  ++stats_.connections;
  return next_conn_++;
}

void SharedBufferRegistry::CloseConnection(uint64_t conn) {
  std::vector<uint64_t> ids;
  {
    MutexLock l(&mu_);
    if (stats_.connections > 0) --stats_.connections;
    for (const auto& [id, b] : buffers_) {
      if (b.conn == conn && !b.ending) ids.push_back(id);
    }
  }
  for (uint64_t id : ids) End(id);
}

ShmError SharedBufferRegistry::Register(uint32_t uid, uint64_t conn, int fd,
                                        uint64_t size, uint64_t* id) {
  auto reject = [&](ShmError e) {
    close(fd);
    MutexLock l(&mu_);
    ++stats_.rejections;
    return e;
  };
  {
    MutexLock l(&mu_);
    if (shutdown_) {
      ++stats_.rejections;
      close(fd);
      return ShmError::kShuttingDown;
    }
  }
  ShmError v = ValidateBufferFd(fd, size);
  if (v != ShmError::kOk) return reject(v);
  {
    // Reserve against the limits before mapping.
    // find(), not operator[]: a refusal must not leave an empty entry.
    MutexLock l(&mu_);
    auto count_it = principal_count_.find(uid);
    auto bytes_it = principal_bytes_.find(uid);
    const uint64_t count =
        count_it == principal_count_.end() ? 0 : count_it->second;
    const uint64_t bytes =
        bytes_it == principal_bytes_.end() ? 0 : bytes_it->second;
    if (count + 1 > limits_.max_buffers_per_principal) {
      ++stats_.rejections;
      close(fd);
      return ShmError::kPrincipalBuffersExceeded;
    }
    if (size > limits_.max_bytes_per_principal ||
        bytes > limits_.max_bytes_per_principal - size) {
      ++stats_.rejections;
      close(fd);
      return ShmError::kPrincipalBytesExceeded;
    }
    if (size > limits_.max_total_bytes ||
        total_bytes_ > limits_.max_total_bytes - size) {
      ++stats_.rejections;
      close(fd);
      return ShmError::kTotalBytesExceeded;
    }
    principal_count_[uid] += 1;
    principal_bytes_[uid] += size;
    total_bytes_ += size;
  }
  auto unreserve = [&] {
    MutexLock l(&mu_);
    UnreserveLocked(uid, size);
    ++stats_.rejections;
  };
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    unreserve();
    return ShmError::kMapFailed;
  }
  if (hooks_.pin) {
    if (!hooks_.pin(p, size).ok()) {
      munmap(p, size);
      unreserve();
      return ShmError::kPinFailed;
    }
  }
  MutexLock l(&mu_);
  uint64_t nid = next_id_++;
  Buffer& b = buffers_[nid];
  b.uid = uid;
  b.conn = conn;
  b.data = static_cast<uint8_t*>(p);
  b.size = size;
  ++stats_.registrations;
  *id = nid;
  return ShmError::kOk;
}

ShmError SharedBufferRegistry::Unregister(uint64_t conn, uint64_t id) {
  {
    MutexLock l(&mu_);
    auto it = buffers_.find(id);
    if (it == buffers_.end() || it->second.conn != conn || it->second.ending) {
      return ShmError::kUnknownBuffer;
    }
  }
  End(id);
  return ShmError::kOk;
}

void SharedBufferRegistry::End(uint64_t id) {
  Buffer b;
  {
    MutexLock l(&mu_);
    auto it = buffers_.find(id);
    if (it == buffers_.end() || it->second.ending) return;
    it->second.ending = true;
    Buffer* bp = &it->second;
    while (bp->refs != 0) CondVarWait(&refs_cv_, &mu_);
    b = *bp;
    buffers_.erase(id);
  }
  if (hooks_.unpin) hooks_.unpin(b.data, b.size);
  munmap(b.data, b.size);
  MutexLock l(&mu_);
  UnreserveLocked(b.uid, b.size);
  ++stats_.unregistrations;
}

void SharedBufferRegistry::UnreserveLocked(uint32_t uid, uint64_t size) {
  principal_count_[uid] -= 1;
  principal_bytes_[uid] -= size;
  if (principal_count_[uid] == 0) {
    principal_count_.erase(uid);
    principal_bytes_.erase(uid);
  }
  total_bytes_ -= size;
}

size_t SharedBufferRegistry::PrincipalEntriesForTest() const {
  MutexLock l(&mu_);
  return principal_count_.size() + principal_bytes_.size();
}

absl::StatusOr<BufferRef> SharedBufferRegistry::Acquire(uint32_t uid,
                                                        uint64_t id) {
  MutexLock l(&mu_);
  auto it = buffers_.find(id);
  if (id == 0 || it == buffers_.end() || it->second.ending) {
    return absl::NotFoundError("no such shared buffer");
  }
  if (it->second.uid != uid) {
    return absl::PermissionDeniedError("permission denied");
  }
  ++it->second.refs;
  BufferRef r;
  r.reg_ = this;
  r.id_ = id;
  r.data_ = it->second.data;
  r.size_ = it->second.size;
  return r;
}

void SharedBufferRegistry::Release(uint64_t id) {
  MutexLock l(&mu_);
  auto it = buffers_.find(id);
  if (it != buffers_.end() && --it->second.refs == 0) refs_cv_.SignalAll();
}

void SharedBufferRegistry::Shutdown() {
  MutexLock l(&mu_);
  shutdown_ = true;
}

void SharedBufferRegistry::CountCopy(bool write, uint64_t bytes) {
  MutexLock l(&mu_);
  (write ? stats_.bytes_written : stats_.bytes_read) += bytes;
}

ShmStats SharedBufferRegistry::stats() const {
  MutexLock l(&mu_);
  ShmStats s = stats_;
  s.buffers = buffers_.size();
  for (const auto& [id, b] : buffers_) s.bytes += b.size;
  return s;
}

}  // namespace shm
}  // namespace gpumig
