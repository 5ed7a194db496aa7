// CudaHostPin in a build without the CUDA toolkit: there is no CudaDevice to
// pin for (its Create() is UNAVAILABLE), so these are never reached by the
// daemon; they exist to complete the interface.
#include "core/device/cuda/cuda_host_pin.h"

namespace gpumig {

absl::Status CudaHostPin(int, void*, size_t) {
  return absl::UnavailableError("built without the CUDA toolkit");
}

void CudaHostUnpin(int, void*) {}

shm::ShmPinHooks CudaShmPinHooks(int) { return {}; }

}  // namespace gpumig
