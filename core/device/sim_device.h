// SimDevice: the embedded default Device backend. Runs everywhere, CI
// included, and behaves like the hardware where gpumig's guarantees are at
// stake.
//
//  - Region memory is host memory: one memfd per region, mapped MAP_SHARED |
//    MAP_NORESERVE and faulted in lazily, so a 16 GiB sim region costs
//    nothing until it is touched. Fresh memory reads as zeros.
//  - CpuMap enforces the CPU-visible aperture exactly as hardware does: a
//    piece of LMEM with any byte at or beyond the aperture cannot be mapped
//    (FAILED_PRECONDITION). SMEM is visible in full.
//  - The copy engine (SimCopyEngine) is one engine thread consuming an
//    in-order FIFO queue, with the semantics of CopyEngine (device.h). It is
//    NOT limited by the aperture. Its fences are appended to one engine
//    Timeline, so their seqnos follow submission order and they signal in
//    that order. The FaultInjector is consulted per command, scoped by the
//    region the command writes (or, for Checksum/ReadToHost, reads):
//    EngineWedged() makes the command fail with INTERNAL "copy engine
//    wedged" without touching memory; EngineLatency() delays it.
//
// Lifetime: the device owns its regions; every SgTable allocated from them
// must be dropped before the device is destroyed. The destructor shuts the
// engine down first (queued commands complete and drop their references).
// Neither the destructor nor Shutdown() may wait on the engine from one of its
// own fence callbacks: Shutdown() there only stops the engine, and the device
// must not be destroyed there.
//
// References: a command holds its SgTables (and dependencies) until it has
// run, and drops them immediately before its fence signals, so a waiter that
// sees the fence signalled also sees the engine's references gone.
//
// Thread-safe.
#ifndef GPUMIG_CORE_DEVICE_SIM_DEVICE_H_
#define GPUMIG_CORE_DEVICE_SIM_DEVICE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/device/device.h"
#include "core/fault/fault_injector.h"
#include "core/mem/region.h"
#include "core/mem/sg_table.h"

namespace gpumig {

struct SimDeviceConfig {
  std::vector<RegionConfig> regions;  // LMEM first
  // Model a second DMA path independent of the copy engine (what CUDA's
  // backend offers for LMEM the CPU cannot reach): FallbackCopy/FallbackFill
  // then reach all memory. Off by default, so memory outside the aperture
  // has no fallback, as on i915's small-BAR parts.
  bool independent_fallback_path = false;
};

class SimCopyEngine;

class SimDevice : public Device {
 public:
  // INVALID_ARGUMENT for bad region configs (Region::Create's errors), two
  // regions of the same name, or no regions at all. INTERNAL if the backing
  // memory cannot be created (memfd_create, ftruncate or mmap failed).
  // `faults` may be null (no faults); it must outlive the device.
  static absl::StatusOr<std::unique_ptr<SimDevice>> Create(
      SimDeviceConfig config, FaultInjector* faults);

  SimDevice(const SimDevice&) = delete;
  SimDevice& operator=(const SimDevice&) = delete;
  // Calls Shutdown(), then releases the regions and their memory.
  ~SimDevice() override;

  absl::string_view backend() const override { return "sim"; }
  std::string description() const override;
  std::vector<Region*> regions() const override;
  CopyEngine& engine() override;

  // INVALID_ARGUMENT if `table` belongs to a region of another device or the
  // range is outside the table; FAILED_PRECONDITION if a piece lies (even in
  // part) outside its region's CPU-visible aperture. Length 0 maps nothing
  // and succeeds.
  absl::StatusOr<std::vector<absl::Span<uint8_t>>> CpuMap(
      const SgTable& table, uint64_t offset, uint64_t length) override;

  // With config.independent_fallback_path: host copies that ignore the
  // aperture and the engine (its queue, wedge and injected failures).
  // Otherwise UNIMPLEMENTED, as Device's default.
  absl::Status FallbackCopy(const SgTable& src, uint64_t src_offset,
                            const SgTable& dst, uint64_t dst_offset,
                            uint64_t length) override;
  absl::Status FallbackFill(const SgTable& dst, uint64_t offset,
                            uint64_t length, uint8_t value) override;

  // Drains the engine queue and joins the engine thread; later commands
  // signal ABORTED "device shut down". Idempotent, thread-safe.
  void Shutdown() override;

 private:
  friend class SimCopyEngine;

  // One region's host backing memory.
  struct Backing {
    std::unique_ptr<Region> region;
    int fd = -1;
    uint8_t* base = nullptr;
    uint64_t size = 0;
  };

  SimDevice() = default;

  // The backing of `region`, or null if it is not one of ours.
  const Backing* FindBacking(const Region* region) const;
  // Host spans of [offset, offset + length) of `table`; with `cpu_only`,
  // FAILED_PRECONDITION for any piece outside the aperture.
  absl::StatusOr<std::vector<absl::Span<uint8_t>>> Map(const SgTable& table,
                                                       uint64_t offset,
                                                       uint64_t length,
                                                       bool cpu_only) const;

  // Constant after construction.
  std::vector<Backing> backings_;
  bool independent_fallback_path_ = false;
  // Declared last: destroyed (and joined) before the memory it writes.
  std::unique_ptr<SimCopyEngine> engine_;
};

}  // namespace gpumig

#endif  // GPUMIG_CORE_DEVICE_SIM_DEVICE_H_
