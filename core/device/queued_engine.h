// QueuedCopyEngine: the CopyEngine front end shared by engines that run
// commands from a queue of their own (SimDevice's engine thread, CudaDevice's
// submission thread): each CopyEngine call becomes one EngineCommand handed to
// the backend's Submit(), and inflight() is counted here.
//
// A backend implements Submit(): it must return the command's fence (the
// engine's, in submission order) and count it with CountSubmitted() before
// the command can run, and CountSignalled() once per command after its
// fence signalled (or was dropped unsignalled at shutdown).
//
// Thread-safe as far as this class goes; Submit() must be too.
#ifndef GPUMIG_CORE_DEVICE_QUEUED_ENGINE_H_
#define GPUMIG_CORE_DEVICE_QUEUED_ENGINE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/device/device.h"
#include "core/fault/fault_injector.h"
#include "core/fence/fence.h"
#include "core/mem/region.h"
#include "core/mem/sg_table.h"

namespace gpumig {

enum class EngineOp { kCopy, kFill, kChecksum, kRead, kWrite };

// One command, as the queue carries it. Which fields matter depends on `op`.
struct EngineCommand {
  EngineOp op = EngineOp::kCopy;
  FenceRef fence;  // set by Submit()
  CopyEngine::Deps deps;
  SgTableRef src;  // kCopy, kChecksum, kRead
  SgTableRef dst;  // kCopy, kFill, kWrite
  uint64_t src_offset = 0;
  uint64_t dst_offset = 0;
  uint64_t length = 0;
  uint8_t value = 0;                  // kFill
  bool inject_failure = false;        // kCopy, kFill
  std::shared_ptr<uint64_t> result;   // kChecksum
  uint8_t* host_dst = nullptr;        // kRead
  const uint8_t* host_src = nullptr;  // kWrite
  // Submitted after Shutdown() began: signalled ABORTED, not executed.
  bool aborted = false;
};

// Whether a region belongs to the engine's device.
using OwnsRegionFn = absl::FunctionRef<bool(const Region*)>;

// INVALID_ARGUMENT naming `what` ("source", "destination") if `table` is
// null, belongs to a region `owns` refuses, or does not hold
// [offset, offset + length).
absl::Status CheckEngineTable(const SgTable* table, uint64_t offset,
                              uint64_t length, absl::string_view what,
                              OwnsRegionFn owns);

// INVALID_ARGUMENT if `cmd` cannot run: a table check above fails for a
// table its op uses, or a checksum result or host buffer it needs is null.
absl::Status ValidateEngineCommand(const EngineCommand& cmd, OwnsRegionFn owns);

// The engine-side faults for `cmd`, scoped by the region it writes (the one
// it reads, for commands that write only host memory): INTERNAL while a
// wedge fires; otherwise it sleeps any injected latency (simulated hardware
// time) and returns OK. `faults` may be null.
absl::Status ApplyEngineFaults(FaultInjector* faults, const EngineCommand& cmd);

class QueuedCopyEngine : public CopyEngine {
 public:
  FenceRef Copy(SgTableRef src, uint64_t src_offset, SgTableRef dst,
                uint64_t dst_offset, uint64_t length, Deps deps,
                bool inject_failure = false) final;
  FenceRef Fill(SgTableRef dst, uint64_t offset, uint64_t length, uint8_t value,
                Deps deps, bool inject_failure = false) final;
  FenceRef Checksum(SgTableRef src, uint64_t offset, uint64_t length,
                    std::shared_ptr<uint64_t> result, Deps deps) final;
  FenceRef ReadToHost(SgTableRef src, uint64_t offset, uint64_t length,
                      uint8_t* host, Deps deps) final;
  FenceRef WriteFromHost(const uint8_t* host, SgTableRef dst, uint64_t offset,
                         uint64_t length, Deps deps) final;
  uint64_t inflight() const final;

 protected:
  // Fence names are "<prefix>-copy", "<prefix>-fill", ...
  explicit QueuedCopyEngine(absl::string_view prefix);

  // Queues `cmd` (or signals it at once when the engine is gone) and returns
  // its fence. `name` is the fence's name.
  virtual FenceRef Submit(EngineCommand cmd, absl::string_view name) = 0;

  void CountSubmitted() { submitted_.fetch_add(1, std::memory_order_acq_rel); }
  void CountSignalled() { signalled_.fetch_add(1, std::memory_order_acq_rel); }

 private:
  FenceRef SubmitOp(EngineCommand cmd) {
    const absl::string_view name = names_[static_cast<int>(cmd.op)];
    return Submit(std::move(cmd), name);
  }

  const std::array<std::string, 5> names_;
  std::atomic<uint64_t> submitted_{0};
  std::atomic<uint64_t> signalled_{0};
};

}  // namespace gpumig

#endif  // GPUMIG_CORE_DEVICE_QUEUED_ENGINE_H_
