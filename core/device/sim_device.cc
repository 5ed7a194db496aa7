// SimDevice and its copy engine: see sim_device.h and device.h.
//
// The engine thread. Submit() appends the command's fence to the engine
// timeline and queues the command under mu_, in one critical section, so
// seqno order is queue order. The engine thread pops one command under mu_,
// then -- with no lock held -- waits for the command's dependencies, decides
// its outcome, touches memory, drops the command's references (tables,
// dependencies) and signals its fence. Because the thread runs commands one at
// a time in queue order, fences signal in seqno order, as a Timeline requires.
//
// Inline execution. A command the engine could start at once -- nothing
// queued or executing (busy_), every dependency already signalled, at most
// kInlineMaxBytes, no engine latency armed -- runs on the submitting thread
// instead, inside Submit(), while busy_ keeps the engine thread and other
// submitters behind it; its fence has signalled when Submit() returns. It is
// the same in-order engine, minus a thread hand-off that costs more than a
// small clear itself. Fences still signal in seqno order: a command queued
// meanwhile runs only after the inline one signalled and cleared busy_.
//
// Shutdown. Shutdown() sets stopping_; commands submitted from then on are
// still queued (behind the ones already queued, so timeline order holds) but
// marked aborted, and the thread signals them ABORTED without waiting for
// their dependencies. Once the queue is empty the thread sets exited_ and
// returns; a command submitted after that has nothing ahead of it left
// unsignalled and is signalled ABORTED inline.
#include "core/device/sim_device.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <thread>
#include <utility>

#include "absl/base/config.h"
#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/bytes.h"
#include "core/base/mutex.h"
#include "core/device/checksum.h"
#include "core/device/queued_engine.h"
#include "core/fence/timeline.h"

namespace gpumig {

namespace {

absl::Status ErrnoError(absl::string_view what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(err)));
}

// Runs fn(dst_piece, src_piece, n) over two piece lists covering the same
// number of bytes, splitting at both lists' boundaries.
template <typename Fn>
void WalkPieces(const std::vector<absl::Span<uint8_t>>& src,
                const std::vector<absl::Span<uint8_t>>& dst, Fn&& fn) {
  size_t i = 0, j = 0;
  uint64_t si = 0, dj = 0;
  while (i < src.size() && j < dst.size()) {
    const uint64_t n =
        std::min<uint64_t>(src[i].size() - si, dst[j].size() - dj);
    fn(dst[j].data() + dj, src[i].data() + si, n);
    si += n;
    dj += n;
    if (si == src[i].size()) {
      ++i;
      si = 0;
    }
    if (dj == dst[j].size()) {
      ++j;
      dj = 0;
    }
  }
}

}  // namespace

// The sim copy engine: one engine thread, an in-order FIFO queue.
//
// Thread-safe. Shutdown() from the engine thread itself (a callback of one of
// this engine's fences) only stops the engine; it cannot wait for the drain.
class SimCopyEngine : public QueuedCopyEngine {
 public:
  SimCopyEngine(const SimDevice* device, FaultInjector* faults)
      : QueuedCopyEngine("sim"),
        device_(device),
        faults_(faults),
        timeline_("sim-copy-engine") {
    std::thread::id id;
    {
      MutexLock lock(&join_mu_);
      thread_ = std::thread([this] { Run(); });
      id = thread_.get_id();
    }
    MutexLock lock(&mu_);
    engine_thread_id_ = id;
  }
  ~SimCopyEngine() override { Shutdown(); }

  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_, join_mu_) {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
      work_cv_.SignalAll();
      // From a fence callback on the engine thread: the thread cannot join
      // itself. It drains and exits; a later Shutdown() (the destructor's)
      // joins it.
      if (std::this_thread::get_id() == engine_thread_id_ ||
          tls_inline_engine == this) {
        return;
      }
    }
    MutexLock lock(&join_mu_);
    if (thread_.joinable()) thread_.join();
  }

 private:
  using Op = EngineOp;
  using Command = EngineCommand;

  static constexpr uint64_t kInlineMaxBytes = 64 << 10;

  static absl::Status ShutDownError() {
    return absl::AbortedError("device shut down");
  }

  // Whether `cmd` may run inline, as far as it alone decides (see the file
  // comment); the queue's state is checked under mu_.
  bool InlineCandidate(const Command& cmd) const {
    if (cmd.length > kInlineMaxBytes) return false;
    for (const FenceRef& dep : cmd.deps) {
      if (dep != nullptr && !dep->IsSignaled()) return false;
    }
    // Latency is simulated by sleeping: that belongs on the engine thread,
    // and it is what lets commands queue up behind a slow one.
    return faults_ == nullptr || !faults_->Armed(FaultKind::kEngineLatency);
  }

  FenceRef Submit(Command cmd, absl::string_view name) override
      ABSL_LOCKS_EXCLUDED(mu_) {
    const bool candidate = InlineCandidate(cmd);
    FenceRef fence;
    bool abort_inline = false;
    bool run_inline = false;
    {
      MutexLock lock(&mu_);
      fence = timeline_.Append(name).fence;
      CountSubmitted();
      cmd.fence = fence;
      if (exited_) {
        abort_inline = true;
      } else if (candidate && !stopping_ && !busy_ && queue_.empty()) {
        busy_ = true;
        run_inline = true;
      } else {
        cmd.aborted = stopping_;
        queue_.push_back(std::move(cmd));
        work_cv_.Signal();
      }
    }
    if (abort_inline) {
      { Command dropped = std::move(cmd); }
      SignalDone(fence, ShutDownError());
    } else if (run_inline) {
      InlineScope scope(this);
      absl::Status status = Execute(cmd);
      Finish(std::move(cmd), std::move(status));
      MutexLock lock(&mu_);
      busy_ = false;
      if (!queue_.empty() || stopping_) work_cv_.Signal();
    }
    return fence;
  }

  // Marks the current thread as running one of this engine's commands
  // inline, for Shutdown().
  class InlineScope {
   public:
    explicit InlineScope(const SimCopyEngine* engine)
        : previous_(tls_inline_engine) {
      tls_inline_engine = engine;
    }
    ~InlineScope() { tls_inline_engine = previous_; }

   private:
    const SimCopyEngine* const previous_;
  };
  static thread_local const SimCopyEngine* tls_inline_engine;

  // Drops the command's references, then signals its fence: the engine is
  // done with the memory, so a waiter sees the tables released.
  void Finish(Command cmd, absl::Status status) {
    FenceRef fence = std::move(cmd.fence);
    { Command done = std::move(cmd); }
    SignalDone(fence, std::move(status));
  }

  void Run() ABSL_LOCKS_EXCLUDED(mu_) {
    for (;;) {
      Command cmd;
      {
        MutexLock lock(&mu_);
        busy_ = false;
        while ((queue_.empty() && !stopping_) || busy_) {
          CondVarWait(&work_cv_, &mu_);
        }
        if (queue_.empty()) {
          exited_ = true;
          return;
        }
        cmd = std::move(queue_.front());
        queue_.pop_front();
        busy_ = true;
      }
      absl::Status status = cmd.aborted ? ShutDownError() : Execute(cmd);
      Finish(std::move(cmd), std::move(status));
    }
  }

  void SignalDone(const FenceRef& fence, absl::Status status) {
    CountSignalled();
    // Only this engine signals its fences, once each: a failure here is a
    // bug, not something a caller can act on.
    fence->SignalWithError(std::move(status)).IgnoreError();
  }

  // The host pieces of [offset, offset + length) of `table`, which must be
  // one of ours and hold the range (ValidateEngineCommand()). The engine is
  // not limited
  // by the aperture.
  std::vector<absl::Span<uint8_t>> Pieces(const SgTable& table, uint64_t offset,
                                          uint64_t length) const {
    const SimDevice::Backing* b = device_->FindBacking(table.region());
    std::vector<absl::Span<uint8_t>> pieces;
    table.ForEachRange(offset, length,
                       [&](uint64_t region_offset, uint64_t n, uint64_t) {
                         pieces.emplace_back(b->base + region_offset, n);
                       });
    return pieces;
  }

  // Runs one command on the engine thread (or inline), with no lock held.
  // Returns the status its fence signals with.
  absl::Status Execute(Command& cmd) {
    // Like a GPU waiting on semaphores: wait for every dependency (even after
    // one failed, so nothing that depends on this fence can overtake them),
    // then skip the command if any failed.
    for (const FenceRef& dep : cmd.deps) {
      if (dep != nullptr) dep->Wait();
    }
    for (const FenceRef& dep : cmd.deps) {
      if (dep == nullptr) continue;
      absl::Status error = dep->error();
      if (!error.ok()) return error;
    }

    if (absl::Status valid =
            ValidateEngineCommand(cmd,
                                  [this](const Region* r) {
                                    return device_->FindBacking(r) != nullptr;
                                  });
        !valid.ok()) {
      return valid;
    }
    if (absl::Status s = ApplyEngineFaults(faults_, cmd); !s.ok()) return s;

    switch (cmd.op) {
      case Op::kCopy: {
        std::vector<absl::Span<uint8_t>> dst =
            Pieces(*cmd.dst, cmd.dst_offset, cmd.length);
        if (cmd.inject_failure) {
          // i915's fail_gpu_migration: the "copy" clears its destination.
          for (absl::Span<uint8_t> p : dst) memset(p.data(), 0, p.size());
          return absl::InternalError("injected blit failure");
        }
        std::vector<absl::Span<uint8_t>> src =
            Pieces(*cmd.src, cmd.src_offset, cmd.length);
        WalkPieces(src, dst, [](uint8_t* d, const uint8_t* s, uint64_t n) {
          memmove(d, s, n);
        });
        return absl::OkStatus();
      }
      case Op::kFill: {
        if (cmd.inject_failure) {
          return absl::InternalError("injected blit failure");
        }
        for (absl::Span<uint8_t> p :
             Pieces(*cmd.dst, cmd.dst_offset, cmd.length)) {
          memset(p.data(), cmd.value, p.size());
        }
        return absl::OkStatus();
      }
      case Op::kChecksum: {
        uint64_t h = kFnv1a64Offset;
        for (absl::Span<uint8_t> p :
             Pieces(*cmd.src, cmd.src_offset, cmd.length)) {
          h = Fnv1a64(p.data(), p.size(), h);
        }
        *cmd.result = h;
        return absl::OkStatus();
      }
      case Op::kRead: {
        uint8_t* out = cmd.host_dst;
        for (absl::Span<uint8_t> p :
             Pieces(*cmd.src, cmd.src_offset, cmd.length)) {
          memcpy(out, p.data(), p.size());
          out += p.size();
        }
        return absl::OkStatus();
      }
      case Op::kWrite: {
        const uint8_t* in = cmd.host_src;
        for (absl::Span<uint8_t> p :
             Pieces(*cmd.dst, cmd.dst_offset, cmd.length)) {
          memcpy(p.data(), in, p.size());
          in += p.size();
        }
        return absl::OkStatus();
      }
    }
    return absl::InternalError("unknown engine command");
  }

  // Constant after construction.
  const SimDevice* const device_;
  FaultInjector* const faults_;

  // Appended to under mu_ only, so seqno order is queue order.
  Timeline timeline_;

  absl::Mutex mu_;
  std::deque<Command> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool exited_ ABSL_GUARDED_BY(mu_) = false;
  // A command is executing (on the engine thread, or inline in Submit()).
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  absl::CondVar work_cv_;  // queue_ non-empty, stopping_, or busy_ cleared
  std::thread::id engine_thread_id_ ABSL_GUARDED_BY(mu_);

  // Never held together with mu_.
  absl::Mutex join_mu_;
  std::thread thread_ ABSL_GUARDED_BY(join_mu_);
};

thread_local const SimCopyEngine* SimCopyEngine::tls_inline_engine = nullptr;

absl::StatusOr<std::unique_ptr<SimDevice>> SimDevice::Create(
    SimDeviceConfig config, FaultInjector* faults) {
  if (config.regions.empty()) {
    return absl::InvalidArgumentError("sim device: no regions configured");
  }
  absl::flat_hash_set<std::string> names;
  for (const RegionConfig& rc : config.regions) {
    if (!names.insert(rc.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("sim device: two regions named \"", rc.name, "\""));
    }
  }

  std::unique_ptr<SimDevice> device(new SimDevice());
  device->independent_fallback_path_ = config.independent_fallback_path;
  for (RegionConfig& rc : config.regions) {
    absl::StatusOr<std::unique_ptr<Region>> region =
        Region::Create(std::move(rc));
    if (!region.ok()) return region.status();
    Backing b;
    b.region = *std::move(region);
    b.size = b.region->size();
    const std::string memfd_name =
        absl::StrCat("gpumig-sim-", b.region->name());
    b.fd = memfd_create(memfd_name.c_str(), MFD_CLOEXEC);
    if (b.fd < 0) return ErrnoError("memfd_create", errno);
    // Pushed now so the destructor closes the fd on the error paths below.
    device->backings_.push_back(std::move(b));
    Backing& bb = device->backings_.back();
    if (ftruncate(bb.fd, static_cast<off_t>(bb.size)) != 0) {
      return ErrnoError(absl::StrCat("ftruncate(", bb.size, ")"), errno);
    }
    void* base = mmap(nullptr, bb.size, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_NORESERVE, bb.fd, 0);
    if (base == MAP_FAILED) {
      return ErrnoError(absl::StrCat("mmap(", bb.size, ")"), errno);
    }
    bb.base = static_cast<uint8_t*>(base);
  }
  device->engine_ = std::make_unique<SimCopyEngine>(device.get(), faults);
  return device;
}

SimDevice::~SimDevice() {
  Shutdown();
  engine_.reset();
  for (Backing& b : backings_) {
    if (b.base != nullptr) munmap(b.base, b.size);
    if (b.fd >= 0) close(b.fd);
  }
}

std::string SimDevice::description() const {
  std::string out = "sim device:";
  bool first = true;
  for (const Backing& b : backings_) {
    const Region& r = *b.region;
    absl::StrAppend(&out, first ? " " : ", ", r.name(), " (",
                    RegionKindName(r.kind()), ") ", FormatBytesExact(r.size()));
    if (r.kind() == RegionKind::kLmem) {
      absl::StrAppend(&out, ", aperture ", FormatBytesExact(r.aperture()));
    }
    first = false;
  }
  return out;
}

std::vector<Region*> SimDevice::regions() const {
  std::vector<Region*> out;
  out.reserve(backings_.size());
  for (const Backing& b : backings_) out.push_back(b.region.get());
  return out;
}

CopyEngine& SimDevice::engine() { return *engine_; }

const SimDevice::Backing* SimDevice::FindBacking(const Region* region) const {
  for (const Backing& b : backings_) {
    if (b.region.get() == region) return &b;
  }
  return nullptr;
}

absl::StatusOr<std::vector<absl::Span<uint8_t>>> SimDevice::CpuMap(
    const SgTable& table, uint64_t offset, uint64_t length) {
  return Map(table, offset, length, /*cpu_only=*/true);
}

absl::StatusOr<std::vector<absl::Span<uint8_t>>> SimDevice::Map(
    const SgTable& table, uint64_t offset, uint64_t length,
    bool cpu_only) const {
  const Backing* b = FindBacking(table.region());
  if (b == nullptr) {
    return absl::InvalidArgumentError(
        "table belongs to a region of another device");
  }
  if (offset > table.size() || length > table.size() - offset) {
    return absl::InvalidArgumentError(
        absl::StrCat("range [", offset, ", ", offset, " + ", length,
                     ") is outside the table (", table.size(), " bytes)"));
  }
  const Region& region = *b->region;
  const uint64_t aperture = region.aperture();
  std::vector<absl::Span<uint8_t>> spans;
  absl::Status error;
  table.ForEachRange(
      offset, length, [&](uint64_t region_offset, uint64_t n, uint64_t) {
        if (!error.ok()) return;
        if (cpu_only && region_offset + n > aperture) {
          error = absl::FailedPreconditionError(absl::StrCat(
              "region ", region.name(), ": offset ",
              std::max(region_offset, aperture),
              " is outside the CPU-visible aperture (", aperture, " bytes)"));
          return;
        }
        spans.emplace_back(b->base + region_offset, n);
      });
  if (!error.ok()) return error;
  return spans;
}

absl::Status SimDevice::FallbackCopy(const SgTable& src, uint64_t src_offset,
                                     const SgTable& dst, uint64_t dst_offset,
                                     uint64_t length) {
  if (!independent_fallback_path_)
    return Device::FallbackCopy(src, src_offset, dst, dst_offset, length);
  absl::StatusOr<std::vector<absl::Span<uint8_t>>> from =
      Map(src, src_offset, length, /*cpu_only=*/false);
  if (!from.ok()) return from.status();
  absl::StatusOr<std::vector<absl::Span<uint8_t>>> to =
      Map(dst, dst_offset, length, /*cpu_only=*/false);
  if (!to.ok()) return to.status();
  CopySpans(*to, *from);
  return absl::OkStatus();
}

absl::Status SimDevice::FallbackFill(const SgTable& dst, uint64_t offset,
                                     uint64_t length, uint8_t value) {
  if (!independent_fallback_path_)
    return Device::FallbackFill(dst, offset, length, value);
  absl::StatusOr<std::vector<absl::Span<uint8_t>>> to =
      Map(dst, offset, length, /*cpu_only=*/false);
  if (!to.ok()) return to.status();
  for (absl::Span<uint8_t> piece : *to)
    memset(piece.data(), value, piece.size());
  return absl::OkStatus();
}

void SimDevice::Shutdown() {
  if (engine_ != nullptr) engine_->Shutdown();
}

}  // namespace gpumig
