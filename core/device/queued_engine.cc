#include "core/device/queued_engine.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace gpumig {

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
