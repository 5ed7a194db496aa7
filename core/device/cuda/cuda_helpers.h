// CUDA helpers shared by CudaDevice (cuda_device.cc) and its copy engine
// (cuda_copy_engine.cc): turning CUDA errors into Status, the current-device
// guard, the device's memory layout, and walking SgTable runs. Internal to
// this package (namespace cuda_internal).
//
// Thread-safety: the free functions are thread-safe; ScopedCudaDevice acts on
// the calling thread only; CudaMemory is constant after construction.
#ifndef GPUMIG_CORE_DEVICE_CUDA_CUDA_HELPERS_H_
#define GPUMIG_CORE_DEVICE_CUDA_CUDA_HELPERS_H_

#include <cuda_runtime_api.h>
#include <driver_types.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/mem/region.h"
#include "core/mem/sg_table.h"

namespace gpumig {
namespace cuda_internal {

// INTERNAL "<call>: <CUDA error name>: <text>".
absl::Status CudaStatus(absl::string_view call, cudaError_t error);

// "8 MiB", "4 KiB", "1000 B": the largest binary unit that divides `bytes`.
std::string HumanBytes(uint64_t bytes);

// Makes `ordinal` the calling thread's current device; restores the previous
// one on destruction (CUDA's current device is per thread).
class ScopedCudaDevice {
 public:
  explicit ScopedCudaDevice(int ordinal);
  ScopedCudaDevice(const ScopedCudaDevice&) = delete;
  ScopedCudaDevice& operator=(const ScopedCudaDevice&) = delete;
  ~ScopedCudaDevice();
  cudaError_t status() const { return status_; }

 private:
  int previous_ = -1;
  cudaError_t status_ = cudaSuccess;
};

// A CUDA call's failure, to be turned into a Status by the caller.
struct CudaResult {
  cudaError_t error = cudaSuccess;
  const char* call = "";
  bool ok() const { return error == cudaSuccess; }
  absl::Status ToStatus() const {
    return ok() ? absl::OkStatus() : CudaStatus(call, error);
  }
};

// Returns CudaResult{error, name} from the enclosing function if the CUDA
// call `expr` fails.
#define GPUMIG_CUDA_TRY(name, expr)                                         \
  do {                                                                      \
    const cudaError_t gpumig_cuda_error_ = (expr);                          \
    if (gpumig_cuda_error_ != cudaSuccess) {                                \
      return ::gpumig::cuda_internal::CudaResult{gpumig_cuda_error_, name}; \
    }                                                                       \
  } while (0)

// The memory of one CudaDevice. Constant after construction.
struct CudaMemory {
  int ordinal = 0;
  Region* lmem = nullptr;
  Region* smem = nullptr;
  uint8_t* lmem_base = nullptr;    // device pointer
  uint8_t* smem_host = nullptr;    // pinned host pointer
  uint8_t* smem_device = nullptr;  // the same memory, mapped for the device

  bool Owns(const Region* r) const {
    return r != nullptr && (r == lmem || r == smem);
  }
  bool IsLmem(const Region* r) const { return r == lmem; }
  // The address cudaMemcpyAsync takes: device pointer for LMEM, host pointer
  // for SMEM (with an explicit cudaMemcpyKind).
  uint8_t* CopyAddress(const Region* r, uint64_t offset) const {
    return (r == lmem ? lmem_base : smem_host) + offset;
  }
  // The address cudaMemsetAsync takes (memset of pinned host memory is
  // supported through its mapped device address).
  uint8_t* DeviceAddress(const Region* r, uint64_t offset) const {
    return (r == lmem ? lmem_base : smem_device) + offset;
  }
};

// The cudaMemcpyKind of a copy between the two kinds of memory.
cudaMemcpyKind KindOf(bool src_lmem, bool dst_lmem);

// One contiguous run of a table, by region offset.
struct Piece {
  uint64_t offset = 0;
  uint64_t size = 0;
};

// The runs of `table` covering [offset, offset + length), in order.
std::vector<Piece> PiecesOf(const SgTable& table, uint64_t offset,
                            uint64_t length);

// Calls fn(src_region_offset, dst_region_offset, n) over two piece lists of
// equal total length, splitting at both lists' boundaries; stops at the first
// failure fn returns.
template <typename Fn>
CudaResult ForEachPair(const std::vector<Piece>& src,
                       const std::vector<Piece>& dst, Fn&& fn) {
  size_t i = 0, j = 0;
  uint64_t si = 0, dj = 0;
  while (i < src.size() && j < dst.size()) {
    const uint64_t n = std::min<uint64_t>(src[i].size - si, dst[j].size - dj);
    CudaResult r = fn(src[i].offset + si, dst[j].offset + dj, n);
    if (!r.ok()) return r;
    si += n;
    dj += n;
    if (si == src[i].size) {
      ++i;
      si = 0;
    }
    if (dj == dst[j].size) {
      ++j;
      dj = 0;
    }
  }
  return {};
}

// INVALID_ARGUMENT naming `what` if `table` is null, is not in one of
// `memory`'s regions, or does not hold [offset, offset + length).
absl::Status CheckTable(const CudaMemory& memory, const SgTable* table,
                        uint64_t offset, uint64_t length,
                        absl::string_view what);

// True if [a, a + length) and [b, b + length) share a byte.
bool RangesOverlap(uint64_t a, uint64_t b, uint64_t length);

}  // namespace cuda_internal
}  // namespace gpumig

#endif  // GPUMIG_CORE_DEVICE_CUDA_CUDA_HELPERS_H_
