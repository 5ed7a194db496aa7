#include "core/device/cuda/cuda_host_pin.h"

#include <cuda_runtime_api.h>
#include <driver_types.h>

#include "absl/strings/str_cat.h"

namespace gpumig {
namespace {

// `ordinal` current on this thread for the scope (CUDA's current device is
// per thread); the previous one restored after.
class DeviceScope {
 public:
  explicit DeviceScope(int ordinal) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    status_ = previous_ == ordinal ? cudaSuccess : cudaSetDevice(ordinal);
    if (status_ != cudaSuccess || previous_ == ordinal) previous_ = -1;
  }
  ~DeviceScope() {
    if (previous_ >= 0) (void)cudaSetDevice(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;
  cudaError_t status() const { return status_; }

 private:
  int previous_ = -1;
  cudaError_t status_ = cudaSuccess;
};

absl::Status Refused(const char* call, cudaError_t e) {
  return absl::ResourceExhaustedError(absl::StrCat(
      call, ": ", cudaGetErrorName(e), ": ", cudaGetErrorString(e)));
}

}  // namespace

absl::Status CudaHostPin(int device_ordinal, void* addr, size_t len) {
  DeviceScope device(device_ordinal);
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
  DeviceScope device(device_ordinal);
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
