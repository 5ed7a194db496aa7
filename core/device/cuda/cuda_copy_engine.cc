// The CUDA copy engine (CudaCopyEngine, cuda_copy_engine.h): see also
// cuda_device.h for the ordering and error contract.
//
// Threads. Submit() (any thread) appends the command's fence to the engine
// timeline and queues the command, both under mu_, so seqno order is queue
// order. The engine's *submission thread* pops commands in order and, with no
// lock held:
//   1. waits on the host for dependencies that are not this engine's fences
//      (this engine's own are ordered on the GPU already, see below), then
//      decides the command's outcome: the first failed dependency's error, an
//      invalid range, a wedge, shutdown -- or "execute";
//   2. queues on the command's stream: cudaStreamWaitEvent on the previous
//      command's event when that ran on the other stream (the global order),
//      the command's copies or memsets (none for a skipped command), a host
//      function that signals the fence, and a cudaEventRecord;
//   3. appends the command's *record* to the in-flight list.
// The *completion thread* takes records off the in-flight list in order,
// cudaEventSynchronize()s each one's event -- this is where asynchronous CUDA
// errors surface -- recycles the event and drops the record.
//
// Signalling. Exactly one party signals each fence, decided by an atomic
// claim on its record. Normally that is the host function, our irq-work
// analog: it claims, drops the command's table references, publishes a
// checksum, signals, and returns; it never blocks and never calls CUDA. The
// completion thread claims a record only (a) when its event reports an error
// (the host function may then never run), or (b) for a *host record*, one
// that never reached the GPU: a CUDA call failed while it was being queued,
// or the engine had already failed. It handles records in list order, after
// every earlier one has signalled; and before the submission thread queues
// GPU work behind a host record it waits for that record's fence, so no
// later host function overtakes it. Fences therefore signal in seqno order.
// When a claim fails, the completion thread waits for the claimant to finish
// signalling before it drops the record, so a popped record is always
// signalled and the engine outlives every claimant.
//
// Host-synchronous commands. Checksum, and ReadToHost/WriteFromHost on SMEM,
// and SMEM-to-SMEM copies need the CPU to touch the bytes (a host-to-host
// cudaMemcpyAsync is synchronous with respect to the host and is not
// documented to wait for its stream). The submission thread orders them like
// any command, cudaStreamSynchronize()s their stream -- every earlier command
// has then finished -- and moves the bytes by CPU (LMEM through a pinned
// staging buffer), then queues only the signalling host function.
//
// Errors. A CUDA call that fails while a command is queued fails that
// command with INTERNAL "<call>: <name>: <text>"; the submission thread then
// synchronises the stream (draining whatever part was queued) and, if that
// fails too, the context is lost: the engine is *failed* and every later
// command is a host record failing with "copy engine failed: ...".
//
// Shutdown. As the sim's: Shutdown() sets stopping_; commands submitted from
// then on are queued but marked aborted and signal ABORTED in order. The
// submission thread exits once its queue is empty; the completion thread
// once the submission thread has exited and the in-flight list is empty. A
// command submitted between the two exits becomes a host record; one
// submitted after both is signalled ABORTED inline.
#include "core/device/cuda/cuda_copy_engine.h"

#include <cuda_runtime_api.h>
#include <driver_types.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/base/mutex.h"
#include "core/device/checksum.h"
#include "core/device/cuda/cuda_helpers.h"
#include "core/device/queued_engine.h"
#include "core/fence/timeline.h"

namespace gpumig {
namespace cuda_internal {
namespace {

// Staging (pinned) for checksums of LMEM, scratch (device) for overlapping
// copies within one table.
constexpr uint64_t kStagingBytes = 8ull << 20;
constexpr uint64_t kScratchBytes = 8ull << 20;

// Set while a thread signals one of an engine's fences (host function or
// completion thread) and on the engine's own threads: Shutdown() there only
// stops the engine, it cannot wait for itself.
thread_local const void* tls_engine_thread = nullptr;

class ScopedEngineThread {
 public:
  explicit ScopedEngineThread(const void* engine)
      : previous_(tls_engine_thread) {
    tls_engine_thread = engine;
  }
  ScopedEngineThread(const ScopedEngineThread&) = delete;
  ScopedEngineThread& operator=(const ScopedEngineThread&) = delete;
  ~ScopedEngineThread() { tls_engine_thread = previous_; }

 private:
  const void* const previous_;
};

using Op = EngineOp;
using Command = EngineCommand;

class StreamCopyEngine;

// A command on its way to its signal. Fields are written by the submission
// thread and published by `ready` (release) before the record is handed to
// a host function or the in-flight list; afterwards only `claimed`, `done`
// and the claimant's moves out of `cmd` change.
struct Record {
  enum class Kind {
    kGpu,   // host function + event queued; the host function signals
    kHost,  // never reached the GPU; the completion thread signals `decided`
    kDone,  // host function queued and known to have run; nothing to wait
    kLost,  // host function queued, no event, context lost: signal `lost`
  };
  StreamCopyEngine* engine = nullptr;
  uint64_t seqno = 0;
  Kind kind = Kind::kHost;
  cudaEvent_t event = nullptr;
  absl::Status decided;  // what the fence signals with
  absl::Status lost;     // kLost
  uint64_t checksum = 0;
  Command cmd;
  std::atomic<bool> ready{false};
  std::atomic<bool> claimed{false};
  std::atomic<bool> done{false};  // the claimant has signalled
  // The host function's reference (kGpu, kLost), which it deletes when it
  // runs. Only its address is used by anyone else (ParkForever).
  void* holder = nullptr;
  // The command's fence, for the submission thread to wait on (cmd.fence is
  // moved out by whoever signals). Set before publication.
  FenceRef fence_for_waiters;
};

void CUDART_CB SignalFromHostFunction(void* user_data);

// Keeps `holder` (a host function's reference to its record) reachable for
// the life of the process. After a lost context a host function may never
// run -- or run late, when nobody may free what it touches. A few hundred
// bytes per command in flight when the context was lost.
void ParkForever(void* holder) {
  static absl::Mutex* mu = new absl::Mutex();
  static std::vector<void*>* parked = new std::vector<void*>();
  MutexLock lock(mu);
  parked->push_back(holder);
}

// The copy engine: see the file comment.
//
// Thread-safe. Shutdown() from a fence callback of this engine only stops it.
class StreamCopyEngine final : public CudaCopyEngine {
 public:
  static absl::StatusOr<std::unique_ptr<StreamCopyEngine>> Create(
      const CudaMemory* memory, FaultInjector* faults) {
    std::unique_ptr<StreamCopyEngine> engine(
        new StreamCopyEngine(memory, faults));
    ScopedCudaDevice device(memory->ordinal);
    if (device.status() != cudaSuccess) {
      return CudaStatus("cudaSetDevice", device.status());
    }
    int least = 0, greatest = 0;
    cudaError_t e = cudaDeviceGetStreamPriorityRange(&least, &greatest);
    if (e != cudaSuccess) {
      return CudaStatus("cudaDeviceGetStreamPriorityRange", e);
    }
    for (cudaStream_t& stream : engine->streams_) {
      e = cudaStreamCreateWithPriority(&stream, cudaStreamNonBlocking, least);
      if (e != cudaSuccess) {
        stream = nullptr;
        return CudaStatus("cudaStreamCreateWithPriority", e);
      }
    }
    void* staging = nullptr;
    e = cudaHostAlloc(&staging, kStagingBytes, cudaHostAllocPortable);
    if (e != cudaSuccess) return CudaStatus("cudaHostAlloc(staging)", e);
    engine->staging_ = static_cast<uint8_t*>(staging);
    void* scratch = nullptr;
    e = cudaMalloc(&scratch, kScratchBytes);
    if (e != cudaSuccess) return CudaStatus("cudaMalloc(scratch)", e);
    engine->scratch_ = static_cast<uint8_t*>(scratch);
    engine->Start();
    return engine;
  }

  ~StreamCopyEngine() override {
    Shutdown();
    ScopedCudaDevice device(memory_->ordinal);
    for (cudaStream_t stream : streams_) {
      if (stream == nullptr) continue;
      (void)cudaStreamSynchronize(stream);
      (void)cudaStreamDestroy(stream);
    }
    {
      MutexLock lock(&events_mu_);
      for (cudaEvent_t event : free_events_) (void)cudaEventDestroy(event);
      free_events_.clear();
    }
    if (staging_ != nullptr) (void)cudaFreeHost(staging_);
    if (scratch_ != nullptr) (void)cudaFree(scratch_);
  }

  void Shutdown() override ABSL_LOCKS_EXCLUDED(mu_, join_mu_) {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
      work_cv_.SignalAll();
      // From one of this engine's signalling contexts: it cannot wait for
      // itself. The threads drain and exit; the destructor joins them.
      if (tls_engine_thread == this) return;
    }
    MutexLock lock(&join_mu_);
    if (submission_thread_.joinable()) submission_thread_.join();
    if (completion_thread_.joinable()) completion_thread_.join();
  }

  absl::Status failed() const override ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return failed_;
  }

  // Claims `record` for signalling; true if this caller won.
  static bool Claim(Record& record) {
    return !record.claimed.exchange(true, std::memory_order_acq_rel);
  }

  // Signals the claimed `record` with `status`: drops the command's
  // references first (a waiter that sees the fence signalled sees them
  // gone), publishes a checksum on success. Never blocks, never calls CUDA.
  void Complete(Record& record, absl::Status status) {
    (void)record.ready.load(std::memory_order_acquire);
    ScopedEngineThread scope(this);
    Command cmd = std::move(record.cmd);
    FenceRef fence = std::move(cmd.fence);
    if (status.ok() && cmd.result != nullptr) *cmd.result = record.checksum;
    { Command dropped = std::move(cmd); }
    CountSignalled();
    // Only this engine signals its fences, once each.
    fence->SignalWithError(std::move(status)).IgnoreError();
    record.done.store(true, std::memory_order_release);
  }

 private:
  enum StreamId { kToDevice = 0, kToHost = 1 };

  StreamCopyEngine(const CudaMemory* memory, FaultInjector* faults)
      : CudaCopyEngine(),
        memory_(memory),
        faults_(faults),
        timeline_("cuda-copy-engine") {}

  void Start() {
    MutexLock lock(&join_mu_);
    submission_thread_ = std::thread([this] { RunSubmission(); });
    completion_thread_ = std::thread([this] { RunCompletion(); });
  }

  static absl::Status ShutDownError() {
    return absl::AbortedError("device shut down");
  }

  FenceRef Submit(Command cmd, absl::string_view name) override
      ABSL_LOCKS_EXCLUDED(mu_) {
    FenceRef fence;
    bool abort_inline = false;
    {
      MutexLock lock(&mu_);
      fence = timeline_.Append(name).fence;
      CountSubmitted();
      cmd.fence = fence;
      if (completion_exited_) {
        abort_inline = true;
      } else if (submission_exited_) {
        // Nobody will queue it: straight to the completion thread, which
        // signals it after everything ahead of it.
        auto record = std::make_shared<Record>();
        record->engine = this;
        record->seqno = fence->seqno();
        record->kind = Record::Kind::kHost;
        record->decided = ShutDownError();
        record->cmd = std::move(cmd);
        record->ready.store(true, std::memory_order_release);
        inflight_.push_back(std::move(record));
        completion_cv_.Signal();
      } else {
        cmd.aborted = stopping_;
        queue_.push_back(std::move(cmd));
        work_cv_.Signal();
      }
    }
    if (abort_inline) {
      { Command dropped = std::move(cmd); }
      CountSignalled();
      fence->SignalWithError(ShutDownError()).IgnoreError();
    }
    return fence;
  }

  // ---- Submission thread -------------------------------------------------

  void RunSubmission() ABSL_LOCKS_EXCLUDED(mu_) {
    ScopedEngineThread scope(this);
    const cudaError_t e = cudaSetDevice(memory_->ordinal);
    if (e != cudaSuccess) MarkFailed(CudaStatus("cudaSetDevice", e));
    for (;;) {
      Command cmd;
      {
        MutexLock lock(&mu_);
        while (queue_.empty() && !stopping_) CondVarWait(&work_cv_, &mu_);
        if (queue_.empty()) {
          submission_exited_ = true;
          completion_cv_.SignalAll();
          return;
        }
        cmd = std::move(queue_.front());
        queue_.pop_front();
      }
      Process(std::move(cmd));
    }
  }

  void Process(Command cmd) ABSL_LOCKS_EXCLUDED(mu_) {
    auto record = std::make_shared<Record>();
    record->engine = this;
    record->seqno = cmd.fence->seqno();
    absl::Status status = cmd.aborted ? ShutDownError() : Decide(cmd);
    {
      MutexLock lock(&mu_);
      if (!failed_.ok()) {
        if (status.ok()) status = failed_;
        record->cmd = std::move(cmd);
        PushHostRecordLocked(std::move(record), std::move(status));
        return;
      }
    }
    // Nothing queued after a host record may signal before it does.
    if (last_host_record_ != nullptr) {
      WaitUntilSignalled(*last_host_record_);
      last_host_record_.reset();
    }

    const StreamId id = ChooseStream(cmd);
    cudaStream_t stream = streams_[id];
    if (previous_event_ != nullptr && previous_stream_ != id) {
      const cudaError_t e = cudaStreamWaitEvent(stream, previous_event_, 0);
      if (e != cudaSuccess) {
        record->cmd = std::move(cmd);
        QueueFailed(std::move(record), id, {e, "cudaStreamWaitEvent"});
        return;
      }
    }
    if (status.ok()) {
      if (cmd.inject_failure && (cmd.op == Op::kCopy || cmd.op == Op::kFill)) {
        // i915's fail_gpu_migration: a "copy" clears its destination, a
        // fill does nothing; both report failure.
        status = absl::InternalError("injected blit failure");
      }
      const CudaResult r = Execute(cmd, stream, &record->checksum);
      if (!r.ok()) {
        record->cmd = std::move(cmd);
        QueueFailed(std::move(record), id, r);
        return;
      }
    }

    record->decided = std::move(status);
    record->cmd = std::move(cmd);
    cudaEvent_t event = nullptr;
    if (const CudaResult r = GetEvent(&event); !r.ok()) {
      QueueFailed(std::move(record), id, r);
      return;
    }
    auto* holder = new std::shared_ptr<Record>(record);
    record->holder = holder;
    record->ready.store(true, std::memory_order_release);
    cudaError_t e = cudaLaunchHostFunc(stream, &SignalFromHostFunction, holder);
    if (e != cudaSuccess) {
      delete holder;
      PutEvent(event);
      QueueFailed(std::move(record), id, {e, "cudaLaunchHostFunc"});
      return;
    }
    e = cudaEventRecord(event, stream);
    if (e != cudaSuccess) {
      // The host function is queued and signals; without an event, wait for
      // it here instead of on the completion thread.
      (void)cudaGetLastError();
      (void)cudaEventDestroy(event);
      const cudaError_t sync = cudaStreamSynchronize(stream);
      MutexLock lock(&mu_);
      if (sync == cudaSuccess) {
        record->kind = Record::Kind::kDone;
      } else {
        record->kind = Record::Kind::kLost;
        record->lost = CudaStatus("cudaEventRecord", e);
        MarkFailedLocked(CudaStatus("cudaStreamSynchronize", sync));
      }
      inflight_.push_back(std::move(record));
      completion_cv_.Signal();
      previous_event_ = nullptr;
      return;
    }
    record->kind = Record::Kind::kGpu;
    record->event = event;
    previous_event_ = event;
    previous_stream_ = id;
    MutexLock lock(&mu_);
    inflight_.push_back(std::move(record));
    completion_cv_.Signal();
  }

  // Waits for foreign dependencies and decides whether `cmd` executes: OK,
  // or the error its fence signals with instead.
  absl::Status Decide(Command& cmd) ABSL_LOCKS_EXCLUDED(mu_) {
    // Like a GPU waiting on semaphores: wait for every foreign dependency
    // (even after one failed, so nothing that depends on this fence can
    // overtake them). This engine's own fences are earlier in the global
    // order already.
    for (const FenceRef& dep : cmd.deps) {
      if (dep != nullptr && !IsOwn(*dep)) dep->Wait();
    }
    for (const FenceRef& dep : cmd.deps) {
      if (dep == nullptr) continue;
      absl::Status error = IsOwn(*dep) ? OwnFenceError(*dep) : dep->error();
      if (!error.ok()) return error;
    }
    if (absl::Status valid = ValidateEngineCommand(
            cmd, [this](const Region* r) { return memory_->Owns(r); });
        !valid.ok()) {
      return valid;
    }
    return ApplyEngineFaults(faults_, cmd);
  }

  bool IsOwn(const Fence& fence) const {
    return fence.context() == timeline_.context();
  }

  // The error `fence` (one of ours, submitted earlier) signals or will
  // signal as far as the submission thread decided it.
  absl::Status OwnFenceError(const Fence& fence) ABSL_LOCKS_EXCLUDED(mu_) {
    if (fence.IsSignaled()) return fence.error();
    {
      MutexLock lock(&mu_);
      // Seqnos increase along the list.
      auto it =
          std::lower_bound(inflight_.begin(), inflight_.end(), fence.seqno(),
                           [](const std::shared_ptr<Record>& r,
                              uint64_t seqno) { return r->seqno < seqno; });
      if (it != inflight_.end() && (*it)->seqno == fence.seqno()) {
        return (*it)->kind == Record::Kind::kLost ? (*it)->lost
                                                  : (*it)->decided;
      }
    }
    // Off the list: the completion thread signalled it.
    fence.Wait();
    return fence.error();
  }

  // Writes into LMEM go on the to-device stream; everything else (writes
  // into SMEM or host memory) on the to-host stream.
  StreamId ChooseStream(const Command& cmd) const {
    const bool writes_table =
        cmd.op == Op::kCopy || cmd.op == Op::kFill || cmd.op == Op::kWrite;
    if (writes_table && cmd.dst != nullptr &&
        memory_->IsLmem(cmd.dst->region())) {
      return kToDevice;
    }
    return kToHost;
  }

  // Queues (or, for host-synchronous commands, performs) the work of a
  // command that executes. With inject_failure a copy clears its
  // destination and a fill does nothing.
  CudaResult Execute(const Command& cmd, cudaStream_t stream,
                     uint64_t* checksum) {
    switch (cmd.op) {
      case Op::kCopy:
        if (cmd.inject_failure) {
          return Memset(*cmd.dst, cmd.dst_offset, cmd.length, 0, stream);
        }
        return CopyTables(*cmd.src, cmd.src_offset, *cmd.dst, cmd.dst_offset,
                          cmd.length, stream);
      case Op::kFill:
        if (cmd.inject_failure) return {};
        return Memset(*cmd.dst, cmd.dst_offset, cmd.length, cmd.value, stream);
      case Op::kChecksum:
        return HostChecksum(*cmd.src, cmd.src_offset, cmd.length, stream,
                            checksum);
      case Op::kRead:
        return Read(*cmd.src, cmd.src_offset, cmd.length, cmd.host_dst, stream);
      case Op::kWrite:
        return Write(cmd.host_src, *cmd.dst, cmd.dst_offset, cmd.length,
                     stream);
    }
    return {cudaErrorInvalidValue, "unknown engine command"};
  }

  CudaResult Memset(const SgTable& dst, uint64_t offset, uint64_t length,
                    uint8_t value, cudaStream_t stream) {
    for (const Piece& p : PiecesOf(dst, offset, length)) {
      GPUMIG_CUDA_TRY(
          "cudaMemsetAsync",
          cudaMemsetAsync(memory_->DeviceAddress(dst.region(), p.offset), value,
                          p.size, stream));
    }
    return {};
  }

  // One cudaMemcpyAsync per run that is contiguous on both sides (adjacent
  // blocks are merged by ForEachRange).
  CudaResult CopyTables(const SgTable& src, uint64_t src_offset,
                        const SgTable& dst, uint64_t dst_offset,
                        uint64_t length, cudaStream_t stream) {
    const bool src_lmem = memory_->IsLmem(src.region());
    const bool dst_lmem = memory_->IsLmem(dst.region());
    if (&src == &dst && src_offset == dst_offset) return {};  // a no-op
    if (!src_lmem && !dst_lmem) {
      return HostCopy(src, src_offset, dst, dst_offset, length, stream);
    }
    if (&src == &dst && RangesOverlap(src_offset, dst_offset, length)) {
      return CopyOverlapping(src, src_offset, dst_offset, length, stream);
    }
    const cudaMemcpyKind kind = KindOf(src_lmem, dst_lmem);
    return ForEachPair(
        PiecesOf(src, src_offset, length), PiecesOf(dst, dst_offset, length),
        [&](uint64_t s, uint64_t d, uint64_t n) -> CudaResult {
          GPUMIG_CUDA_TRY("cudaMemcpyAsync",
                          cudaMemcpyAsync(memory_->CopyAddress(dst.region(), d),
                                          memory_->CopyAddress(src.region(), s),
                                          n, kind, stream));
          return {};
        });
  }

  // memmove within one LMEM table, through the device scratch buffer: in
  // chunks, front to back when moving down, back to front when moving up, so
  // no chunk is overwritten before it has been read.
  CudaResult CopyOverlapping(const SgTable& table, uint64_t src_offset,
                             uint64_t dst_offset, uint64_t length,
                             cudaStream_t stream) {
    const bool forward = dst_offset < src_offset;
    for (uint64_t done = 0; done < length;) {
      const uint64_t n = std::min<uint64_t>(kScratchBytes, length - done);
      const uint64_t pos = forward ? done : length - done - n;
      uint64_t at = 0;
      for (const Piece& p : PiecesOf(table, src_offset + pos, n)) {
        GPUMIG_CUDA_TRY(
            "cudaMemcpyAsync",
            cudaMemcpyAsync(scratch_ + at,
                            memory_->CopyAddress(table.region(), p.offset),
                            p.size, cudaMemcpyDeviceToDevice, stream));
        at += p.size;
      }
      at = 0;
      for (const Piece& p : PiecesOf(table, dst_offset + pos, n)) {
        GPUMIG_CUDA_TRY(
            "cudaMemcpyAsync",
            cudaMemcpyAsync(memory_->CopyAddress(table.region(), p.offset),
                            scratch_ + at, p.size, cudaMemcpyDeviceToDevice,
                            stream));
        at += p.size;
      }
      done += n;
    }
    return {};
  }

  // SMEM to SMEM, by CPU once everything earlier has finished.
  CudaResult HostCopy(const SgTable& src, uint64_t src_offset,
                      const SgTable& dst, uint64_t dst_offset, uint64_t length,
                      cudaStream_t stream) {
    GPUMIG_CUDA_TRY("cudaStreamSynchronize", cudaStreamSynchronize(stream));
    std::vector<uint8_t> bounce;
    const bool overlap =
        &src == &dst && RangesOverlap(src_offset, dst_offset, length);
    if (overlap) {
      // Piece boundaries differ on either side; copy out first.
      bounce.resize(length);
      uint64_t at = 0;
      for (const Piece& p : PiecesOf(src, src_offset, length)) {
        memcpy(bounce.data() + at, memory_->smem_host + p.offset, p.size);
        at += p.size;
      }
      at = 0;
      for (const Piece& p : PiecesOf(dst, dst_offset, length)) {
        memcpy(memory_->smem_host + p.offset, bounce.data() + at, p.size);
        at += p.size;
      }
      return {};
    }
    return ForEachPair(
        PiecesOf(src, src_offset, length), PiecesOf(dst, dst_offset, length),
        [&](uint64_t s, uint64_t d, uint64_t n) -> CudaResult {
          memcpy(memory_->smem_host + d, memory_->smem_host + s, n);
          return {};
        });
  }

  // LMEM: cudaMemcpyAsync straight into the caller's (usually pageable)
  // buffer; the runtime returns once a pageable copy has completed. SMEM: by
  // CPU once everything earlier has finished.
  CudaResult Read(const SgTable& src, uint64_t offset, uint64_t length,
                  uint8_t* host, cudaStream_t stream) {
    const bool lmem = memory_->IsLmem(src.region());
    if (!lmem)
      GPUMIG_CUDA_TRY("cudaStreamSynchronize", cudaStreamSynchronize(stream));
    uint64_t at = 0;
    for (const Piece& p : PiecesOf(src, offset, length)) {
      if (lmem) {
        GPUMIG_CUDA_TRY(
            "cudaMemcpyAsync",
            cudaMemcpyAsync(host + at, memory_->lmem_base + p.offset, p.size,
                            cudaMemcpyDeviceToHost, stream));
      } else {
        memcpy(host + at, memory_->smem_host + p.offset, p.size);
      }
      at += p.size;
    }
    return {};
  }

  CudaResult Write(const uint8_t* host, const SgTable& dst, uint64_t offset,
                   uint64_t length, cudaStream_t stream) {
    const bool lmem = memory_->IsLmem(dst.region());
    if (!lmem)
      GPUMIG_CUDA_TRY("cudaStreamSynchronize", cudaStreamSynchronize(stream));
    uint64_t at = 0;
    for (const Piece& p : PiecesOf(dst, offset, length)) {
      if (lmem) {
        GPUMIG_CUDA_TRY(
            "cudaMemcpyAsync",
            cudaMemcpyAsync(memory_->lmem_base + p.offset, host + at, p.size,
                            cudaMemcpyHostToDevice, stream));
      } else {
        memcpy(memory_->smem_host + p.offset, host + at, p.size);
      }
      at += p.size;
    }
    return {};
  }

  // FNV-1a of the range, by CPU once everything earlier has finished: SMEM
  // in place, LMEM through the pinned staging buffer.
  CudaResult HostChecksum(const SgTable& src, uint64_t offset, uint64_t length,
                          cudaStream_t stream, uint64_t* checksum) {
    GPUMIG_CUDA_TRY("cudaStreamSynchronize", cudaStreamSynchronize(stream));
    const bool lmem = memory_->IsLmem(src.region());
    uint64_t h = kFnv1a64Offset;
    for (const Piece& p : PiecesOf(src, offset, length)) {
      if (!lmem) {
        h = Fnv1a64(memory_->smem_host + p.offset, p.size, h);
        continue;
      }
      for (uint64_t done = 0; done < p.size;) {
        const uint64_t n = std::min<uint64_t>(kStagingBytes, p.size - done);
        GPUMIG_CUDA_TRY(
            "cudaMemcpyAsync",
            cudaMemcpyAsync(staging_, memory_->lmem_base + p.offset + done, n,
                            cudaMemcpyDeviceToHost, stream));
        GPUMIG_CUDA_TRY("cudaStreamSynchronize", cudaStreamSynchronize(stream));
        h = Fnv1a64(staging_, n, h);
        done += n;
      }
    }
    *checksum = h;
    return {};
  }

  // Waits until the completion thread has signalled the host record
  // `record` and run its fence's callbacks, so that no later command's
  // signal (or callback) can overtake them.
  static void WaitUntilSignalled(const Record& record) {
    // The fence wait covers the long part (everything queued before the
    // record has to finish); its callbacks then run briefly, never blocking.
    record.fence_for_waiters->Wait();
    while (!record.done.load(std::memory_order_acquire)) {
      std::this_thread::yield();
    }
  }

  // A CUDA call failed while `record` was being queued on stream `id`: the
  // command fails with that error. Drain what was queued; if even that
  // fails, the context is lost and the engine has failed.
  void QueueFailed(std::shared_ptr<Record> record, StreamId id,
                   const CudaResult& r) ABSL_LOCKS_EXCLUDED(mu_) {
    (void)cudaGetLastError();  // Clears a non-sticky error.
    const cudaError_t sync = cudaStreamSynchronize(streams_[id]);
    MutexLock lock(&mu_);
    if (sync != cudaSuccess) {
      MarkFailedLocked(CudaStatus("cudaStreamSynchronize", sync));
    }
    PushHostRecordLocked(std::move(record), r.ToStatus());
  }

  void PushHostRecordLocked(std::shared_ptr<Record> record, absl::Status status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    record->kind = Record::Kind::kHost;
    record->decided = std::move(status);
    record->fence_for_waiters = record->cmd.fence;
    record->ready.store(true, std::memory_order_release);
    last_host_record_ = record;
    previous_event_ = nullptr;
    inflight_.push_back(std::move(record));
    completion_cv_.Signal();
  }

  void MarkFailed(absl::Status error) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    MarkFailedLocked(std::move(error));
  }
  void MarkFailedLocked(absl::Status error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!failed_.ok()) return;
    failed_ = absl::InternalError(
        absl::StrCat("copy engine failed: ", error.message()));
  }

  CudaResult GetEvent(cudaEvent_t* event) ABSL_LOCKS_EXCLUDED(events_mu_) {
    {
      MutexLock lock(&events_mu_);
      if (!free_events_.empty()) {
        *event = free_events_.back();
        free_events_.pop_back();
        return {};
      }
    }
    // Blocking sync: the completion thread sleeps instead of spinning.
    GPUMIG_CUDA_TRY("cudaEventCreateWithFlags",
                    cudaEventCreateWithFlags(
                        event, cudaEventDisableTiming | cudaEventBlockingSync));
    return {};
  }

  void PutEvent(cudaEvent_t event) ABSL_LOCKS_EXCLUDED(events_mu_) {
    MutexLock lock(&events_mu_);
    free_events_.push_back(event);
  }

  // ---- Completion thread -------------------------------------------------

  void RunCompletion() ABSL_LOCKS_EXCLUDED(mu_) {
    ScopedEngineThread scope(this);
    const cudaError_t e = cudaSetDevice(memory_->ordinal);
    if (e != cudaSuccess) MarkFailed(CudaStatus("cudaSetDevice", e));
    for (;;) {
      std::shared_ptr<Record> record;
      {
        MutexLock lock(&mu_);
        while (inflight_.empty() && !submission_exited_) {
          CondVarWait(&completion_cv_, &mu_);
        }
        if (inflight_.empty()) {
          completion_exited_ = true;
          return;
        }
        record = inflight_.front();
      }
      Reap(*record);
      MutexLock lock(&mu_);
      inflight_.pop_front();
    }
  }

  void Reap(Record& record) ABSL_LOCKS_EXCLUDED(mu_) {
    (void)record.ready.load(std::memory_order_acquire);
    absl::Status status = record.decided;
    bool host_function_may_run_late = false;
    switch (record.kind) {
      case Record::Kind::kGpu: {
        const cudaError_t e = cudaEventSynchronize(record.event);
        if (e == cudaSuccess) {
          // The event follows the host function: it has signalled.
          PutEvent(record.event);
        } else {
          (void)cudaGetLastError();
          host_function_may_run_late = true;
          status = absl::InternalError(
              absl::StrCat("asynchronous CUDA error: ",
                           CudaStatus("cudaEventSynchronize", e).message()));
          MarkFailed(status);
          // Not recycled or destroyed: the submission thread may still name
          // it in a cudaStreamWaitEvent (which then fails, as the context
          // is lost). One event leaks per lost context.
        }
        break;
      }
      case Record::Kind::kLost:
        host_function_may_run_late = true;
        status = record.lost;
        break;
      case Record::Kind::kHost:
      case Record::Kind::kDone:
        break;
    }
    if (Claim(record)) {
      // Without an error the host function has run (the event follows it);
      // with one it may never run, or run late: its reference stays valid.
      if (host_function_may_run_late) ParkForever(record.holder);
      Complete(record, std::move(status));
      return;
    }
    // The host function claimed it: wait until it has signalled (it never
    // blocks, so this is short), so the record leaves the list signalled.
    while (!record.done.load(std::memory_order_acquire)) {
      std::this_thread::yield();
    }
  }

  // Constant after construction.
  const CudaMemory* const memory_;
  FaultInjector* const faults_;
  cudaStream_t streams_[2] = {nullptr, nullptr};
  uint8_t* staging_ = nullptr;  // pinned, kStagingBytes
  uint8_t* scratch_ = nullptr;  // device, kScratchBytes

  // Appended to under mu_ only, so seqno order is queue order.
  Timeline timeline_;

  // Submission thread only.
  cudaEvent_t previous_event_ = nullptr;
  StreamId previous_stream_ = kToDevice;
  std::shared_ptr<Record> last_host_record_;

  mutable absl::Mutex mu_;
  std::deque<Command> queue_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<Record>> inflight_ ABSL_GUARDED_BY(mu_);
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool submission_exited_ ABSL_GUARDED_BY(mu_) = false;
  bool completion_exited_ ABSL_GUARDED_BY(mu_) = false;
  absl::CondVar work_cv_;        // queue_ non-empty or stopping_
  absl::CondVar completion_cv_;  // inflight_ non-empty or submission exited

  absl::Mutex events_mu_;
  std::vector<cudaEvent_t> free_events_ ABSL_GUARDED_BY(events_mu_);

  // Never held together with mu_.
  absl::Mutex join_mu_;
  std::thread submission_thread_ ABSL_GUARDED_BY(join_mu_);
  std::thread completion_thread_ ABSL_GUARDED_BY(join_mu_);
};

// The host function: claims and signals. It owns one reference to the
// record; if the completion thread claimed first (an asynchronous error), it
// only drops that reference.
void CUDART_CB SignalFromHostFunction(void* user_data) {
  std::shared_ptr<Record> record =
      std::move(*static_cast<std::shared_ptr<Record>*>(user_data));
  delete static_cast<std::shared_ptr<Record>*>(user_data);
  if (!StreamCopyEngine::Claim(*record)) return;
  (void)record->ready.load(std::memory_order_acquire);
  record->engine->Complete(*record, record->decided);
}

}  // namespace

absl::StatusOr<std::unique_ptr<CudaCopyEngine>> CudaCopyEngine::Create(
    const CudaMemory* memory, FaultInjector* faults) {
  absl::StatusOr<std::unique_ptr<StreamCopyEngine>> engine =
      StreamCopyEngine::Create(memory, faults);
  if (!engine.ok()) return engine.status();
  return std::unique_ptr<CudaCopyEngine>(*std::move(engine));
}

}  // namespace cuda_internal
}  // namespace gpumig
