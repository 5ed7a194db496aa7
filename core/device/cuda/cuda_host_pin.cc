#include "core/device/cuda/cuda_host_pin.h"

#include <cuda_runtime_api.h>
#include <driver_types.h>

#include "absl/strings/str_cat.h"
#include "core/device/cuda/cuda_helpers.h"

namespace gpumig {
namespace {

using cuda_internal::ScopedCudaDevice;

absl::Status Refused(const char* call, cudaError_t e) {
  return absl::ResourceExhaustedError(absl::StrCat(
      call, ": ", cudaGetErrorName(e), ": ", cudaGetErrorString(e)));
}

}  // namespace

absl::Status CudaHostPin(int device_ordinal, void* addr, size_t len) {
  ScopedCudaDevice device(device_ordinal);
  if (device.status() != cudaSuccess) {
    return Refused("cudaSetDevice", device.status());
  }
  const cudaError_t e = cudaHostRegister(addr, len, cudaHostRegisterPortable);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();  // not sticky: clear it for later calls
    return Refused("cudaHostRegister", e);
  }
  return absl::OkStatus();
}

void CudaHostUnpin(int device_ordinal, void* addr) {
  ScopedCudaDevice device(device_ordinal);
  if (cudaHostUnregister(addr) != cudaSuccess) (void)cudaGetLastError();
}

shm::ShmPinHooks CudaShmPinHooks(int device_ordinal) {
  shm::ShmPinHooks hooks;
  hooks.pin = [device_ordinal](void* addr, size_t len) {
    return CudaHostPin(device_ordinal, addr, len);
  };
  hooks.unpin = [device_ordinal](void* addr, size_t) {
    CudaHostUnpin(device_ordinal, addr);
  };
  return hooks;
}

}  // namespace gpumig
