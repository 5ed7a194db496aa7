#include "core/device/queued_engine.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace gpumig {

absl::Status CheckEngineTable(const SgTable* table, uint64_t offset,
                              uint64_t length, absl::string_view what,
                              OwnsRegionFn owns) {
  if (table == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(what, " table is null"));
  }
  if (!owns(table->region())) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " table belongs to a region of another device"));
  }
  if (offset > table->size() || length > table->size() - offset) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " range [", offset, ", ", offset, " + ", length,
                     ") is outside the table (", table->size(), " bytes)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateEngineCommand(const EngineCommand& cmd,
                                   OwnsRegionFn owns) {
  const auto source = [&] {
    return CheckEngineTable(cmd.src.get(), cmd.src_offset, cmd.length, "source",
                            owns);
  };
  const auto destination = [&] {
    return CheckEngineTable(cmd.dst.get(), cmd.dst_offset, cmd.length,
                            "destination", owns);
  };
  absl::Status s;
  switch (cmd.op) {
    case EngineOp::kCopy:
      s = source();
      return s.ok() ? destination() : s;
    case EngineOp::kFill:
      return destination();
    case EngineOp::kChecksum:
      s = source();
      if (s.ok() && cmd.result == nullptr) {
        s = absl::InvalidArgumentError("checksum result is null");
      }
      return s;
    case EngineOp::kRead:
      s = source();
      if (s.ok() && cmd.length > 0 && cmd.host_dst == nullptr) {
        s = absl::InvalidArgumentError("host buffer is null");
      }
      return s;
    case EngineOp::kWrite:
      s = destination();
      if (s.ok() && cmd.length > 0 && cmd.host_src == nullptr) {
        s = absl::InvalidArgumentError("host buffer is null");
      }
      return s;
  }
  return absl::InternalError("unknown engine command");
}

absl::Status ApplyEngineFaults(FaultInjector* faults,
                               const EngineCommand& cmd) {
  if (faults == nullptr) return absl::OkStatus();
  const bool reads_only =
      cmd.op == EngineOp::kChecksum || cmd.op == EngineOp::kRead;
  const std::string& scope = (reads_only ? cmd.src : cmd.dst)->region()->name();
  if (faults->EngineWedged(scope)) {
    return absl::InternalError("copy engine wedged");
  }
  const absl::Duration latency = faults->EngineLatency(scope);
  // Simulated hardware latency, not synchronisation.
  if (latency > absl::ZeroDuration()) absl::SleepFor(latency);
  return absl::OkStatus();
}

QueuedCopyEngine::QueuedCopyEngine(absl::string_view prefix)
    : names_{absl::StrCat(prefix, "-copy"), absl::StrCat(prefix, "-fill"),
             absl::StrCat(prefix, "-checksum"), absl::StrCat(prefix, "-read"),
             absl::StrCat(prefix, "-write")} {}

FenceRef QueuedCopyEngine::Copy(SgTableRef src, uint64_t src_offset,
                                SgTableRef dst, uint64_t dst_offset,
                                uint64_t length, Deps deps,
                                bool inject_failure) {
  EngineCommand cmd;
  cmd.op = EngineOp::kCopy;
  cmd.src = std::move(src);
  cmd.src_offset = src_offset;
  cmd.dst = std::move(dst);
  cmd.dst_offset = dst_offset;
  cmd.length = length;
  cmd.deps = std::move(deps);
  cmd.inject_failure = inject_failure;
  return SubmitOp(std::move(cmd));
}

FenceRef QueuedCopyEngine::Fill(SgTableRef dst, uint64_t offset,
                                uint64_t length, uint8_t value, Deps deps,
                                bool inject_failure) {
  EngineCommand cmd;
  cmd.op = EngineOp::kFill;
  cmd.dst = std::move(dst);
  cmd.dst_offset = offset;
  cmd.length = length;
  cmd.value = value;
  cmd.deps = std::move(deps);
  cmd.inject_failure = inject_failure;
  return SubmitOp(std::move(cmd));
}

FenceRef QueuedCopyEngine::Checksum(SgTableRef src, uint64_t offset,
                                    uint64_t length,
                                    std::shared_ptr<uint64_t> result,
                                    Deps deps) {
  EngineCommand cmd;
  cmd.op = EngineOp::kChecksum;
  cmd.src = std::move(src);
  cmd.src_offset = offset;
  cmd.length = length;
  cmd.result = std::move(result);
  cmd.deps = std::move(deps);
  return SubmitOp(std::move(cmd));
}

FenceRef QueuedCopyEngine::ReadToHost(SgTableRef src, uint64_t offset,
                                      uint64_t length, uint8_t* host,
                                      Deps deps) {
  EngineCommand cmd;
  cmd.op = EngineOp::kRead;
  cmd.src = std::move(src);
  cmd.src_offset = offset;
  cmd.length = length;
  cmd.host_dst = host;
  cmd.deps = std::move(deps);
  return SubmitOp(std::move(cmd));
}

FenceRef QueuedCopyEngine::WriteFromHost(const uint8_t* host, SgTableRef dst,
                                         uint64_t offset, uint64_t length,
                                         Deps deps) {
  EngineCommand cmd;
  cmd.op = EngineOp::kWrite;
  cmd.host_src = host;
  cmd.dst = std::move(dst);
  cmd.dst_offset = offset;
  cmd.length = length;
  cmd.deps = std::move(deps);
  return SubmitOp(std::move(cmd));
}

uint64_t QueuedCopyEngine::inflight() const {
  // Read signalled first: both only grow, so this never underflows.
  const uint64_t signalled = signalled_.load(std::memory_order_acquire);
  const uint64_t submitted = submitted_.load(std::memory_order_acquire);
  return submitted - signalled;
}

}  // namespace gpumig
