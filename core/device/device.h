// Device: the hardware gpumig manages -- its memory regions, its copy engine
// (the blitter, BCS) and CPU access to region memory.
//
// Backends: SimDevice (core/device/sim_device.h, the embedded default: host
// memory, an in-order engine thread, a CPU aperture enforced exactly as
// hardware would) and CudaDevice (core/device/cuda, real GPU memory).
//
// Thread-safe.
#ifndef GPUMIG_CORE_DEVICE_DEVICE_H_
#define GPUMIG_CORE_DEVICE_DEVICE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/fence/fence.h"
#include "core/mem/region.h"
#include "core/mem/sg_table.h"

namespace gpumig {

// The copy engine. Commands execute in submission order. Each command first
// waits for its dependencies; if any of them signalled with an error, the
// command is NOT executed and its fence signals with the first such error (a
// GPU scheduler skips requests after a reset). Otherwise it executes and its
// fence signals OK, or with an INTERNAL error if the engine failed.
//
// Every command holds references to the SgTables it touches until its fence
// has signalled. Ranges must lie inside the tables (INVALID_ARGUMENT in the
// returned fence otherwise; the engine never touches memory out of range).
//
// `inject_failure` (FaultInjector, decided by the caller): the command
// misbehaves the way i915's fail_gpu_migration selftest makes it: a copy
// CLEARS the destination range instead of copying, a fill leaves the
// destination untouched, and both then signal INTERNAL "injected blit
// failure" -- so only a correct failsafe passes a content check.
//
// A wedged engine (FaultInjector::EngineWedged()) executes nothing: every
// command signals INTERNAL "copy engine wedged".
class CopyEngine {
 public:
  using Deps = std::vector<FenceRef>;
  virtual ~CopyEngine() = default;

  virtual FenceRef Copy(SgTableRef src, uint64_t src_offset, SgTableRef dst,
                        uint64_t dst_offset, uint64_t length, Deps deps,
                        bool inject_failure = false) = 0;
  virtual FenceRef Fill(SgTableRef dst, uint64_t offset, uint64_t length,
                        uint8_t value, Deps deps,
                        bool inject_failure = false) = 0;
  // FNV-1a 64 of the range (core/device/checksum.h), written to *result
  // before the fence signals OK.
  virtual FenceRef Checksum(SgTableRef src, uint64_t offset, uint64_t length,
                            std::shared_ptr<uint64_t> result, Deps deps) = 0;
  // Transfers between a table and host memory (reads and writes of objects
  // the CPU cannot map). `host` must stay valid until the fence signals.
  virtual FenceRef ReadToHost(SgTableRef src, uint64_t offset, uint64_t length,
                              uint8_t* host, Deps deps) = 0;
  virtual FenceRef WriteFromHost(const uint8_t* host, SgTableRef dst,
                                 uint64_t offset, uint64_t length,
                                 Deps deps) = 0;

  // Commands submitted and not yet signalled.
  virtual uint64_t inflight() const = 0;
};

class Device {
 public:
  virtual ~Device() = default;

  // "sim" or "cuda".
  virtual absl::string_view backend() const = 0;
  // Human-readable description (model, memory sizes).
  virtual std::string description() const = 0;

  // The regions, LMEM first. Owned by the device; valid for its lifetime.
  virtual std::vector<Region*> regions() const = 0;
  // NOT_FOUND if there is no region of that name.
  absl::StatusOr<Region*> FindRegion(absl::string_view name) const;

  virtual CopyEngine& engine() = 0;

  // CPU access to [offset, offset + length) of `table`: one span per
  // contiguous piece, in order. FAILED_PRECONDITION if any piece lies
  // outside its region's CPU-visible aperture (nothing is mapped then);
  // INVALID_ARGUMENT if the range is outside the table.
  virtual absl::StatusOr<std::vector<absl::Span<uint8_t>>> CpuMap(
      const SgTable& table, uint64_t offset, uint64_t length) = 0;

  // Waits for the engine to go idle and stops it. Commands submitted after
  // signal ABORTED. Idempotent.
  virtual void Shutdown() = 0;

  // The failsafe's second path, for memory the CPU cannot reach (LMEM
  // outside the aperture; on CudaDevice that is all of LMEM, whose aperture
  // is 0). CpuCopy/CpuFill are the first choice; a failsafe uses these only
  // when CpuMap refuses one side, before declaring an object unknown-state.
  //
  // A backend implements them only with a transfer path independent of its
  // CopyEngine: not its queue or streams, not its wedge state, not subject to
  // the engine's injected failures (the FaultInjector is not consulted; the
  // caller gates the path, e.g. with MemcpyBanned). Synchronous: returns once
  // the bytes are in place, or with the error. Works after Shutdown() until
  // the device is destroyed (a MemoryManager drains its failsafe works after
  // shutting the engine down). May block: never call from a fence callback.
  // The caller holds references to both tables for the duration. The ranges
  // of one table must not overlap.
  //
  // OK: done. UNIMPLEMENTED: the backend has no such path (the default; the
  // sim's CPU path reaches everything the sim's engine does not). INVALID_
  // ARGUMENT: a range outside its table, a table of another device, or
  // overlapping ranges of one table; nothing was written. INTERNAL: the path
  // failed; the destination range's content is unspecified.
  virtual absl::Status FallbackCopy(const SgTable& src, uint64_t src_offset,
                                    const SgTable& dst, uint64_t dst_offset,
                                    uint64_t length) {
    (void)src, (void)src_offset, (void)dst, (void)dst_offset, (void)length;
    return absl::UnimplementedError(
        absl::StrCat("backend ", backend(), " has no device fallback path"));
  }
  // Sets [offset, offset + length) of `dst` to `value`; as FallbackCopy.
  virtual absl::Status FallbackFill(const SgTable& dst, uint64_t offset,
                                    uint64_t length, uint8_t value) {
    (void)dst, (void)offset, (void)length, (void)value;
    return absl::UnimplementedError(
        absl::StrCat("backend ", backend(), " has no device fallback path"));
  }
};

// Copies between two lists of host spans covering the same number of bytes
// with different piece boundaries (memmove per piece: may overlap).
void CopySpans(const std::vector<absl::Span<uint8_t>>& to,
               const std::vector<absl::Span<uint8_t>>& from);

// Copies `length` bytes between two tables by CPU (the failsafe fallback).
// FAILED_PRECONDITION if either side is not CPU-accessible.
absl::Status CpuCopy(Device& device, const SgTable& src, uint64_t src_offset,
                     const SgTable& dst, uint64_t dst_offset, uint64_t length);
// memset by CPU. FAILED_PRECONDITION if `dst` is not CPU-accessible.
absl::Status CpuFill(Device& device, const SgTable& dst, uint64_t offset,
                     uint64_t length, uint8_t value);

}  // namespace gpumig

#endif  // GPUMIG_CORE_DEVICE_DEVICE_H_
