#include "core/device/cuda/cuda_helpers.h"

#include "absl/strings/str_cat.h"
#include "core/device/queued_engine.h"

namespace gpumig {
namespace cuda_internal {

absl::Status CudaStatus(absl::string_view call, cudaError_t error) {
  return absl::InternalError(absl::StrCat(call, ": ", cudaGetErrorName(error),
                                          ": ", cudaGetErrorString(error)));
}

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  uint64_t v = bytes;
  while (unit < 4 && v >= 1024 && v % 1024 == 0) {
    v /= 1024;
    ++unit;
  }
  return absl::StrCat(v, " ", kUnits[unit]);
}

ScopedCudaDevice::ScopedCudaDevice(int ordinal) {
  if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
  status_ = previous_ == ordinal ? cudaSuccess : cudaSetDevice(ordinal);
  if (status_ != cudaSuccess || previous_ == ordinal) previous_ = -1;
}

ScopedCudaDevice::~ScopedCudaDevice() {
  if (previous_ >= 0) (void)cudaSetDevice(previous_);
}

cudaMemcpyKind KindOf(bool src_lmem, bool dst_lmem) {
  if (src_lmem)
    return dst_lmem ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost;
  return dst_lmem ? cudaMemcpyHostToDevice : cudaMemcpyHostToHost;
}

std::vector<Piece> PiecesOf(const SgTable& table, uint64_t offset,
                            uint64_t length) {
  std::vector<Piece> pieces;
  table.ForEachRange(offset, length,
                     [&](uint64_t region_offset, uint64_t n, uint64_t) {
                       pieces.push_back({region_offset, n});
                     });
  return pieces;
}

absl::Status CheckTable(const CudaMemory& memory, const SgTable* table,
                        uint64_t offset, uint64_t length,
                        absl::string_view what) {
  return CheckEngineTable(
      table, offset, length, what,
      [&memory](const Region* r) { return memory.Owns(r); });
}

bool RangesOverlap(uint64_t a, uint64_t b, uint64_t length) {
  return length > 0 && a < b + length && b < a + length;
}

}  // namespace cuda_internal
}  // namespace gpumig
