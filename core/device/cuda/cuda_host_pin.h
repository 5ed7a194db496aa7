// Shared-buffer pinning for the CUDA backend (docs/api.md "Shared buffers").
//
// A client's shared buffer is mapped once by the daemon's registry
// (//core/shm:shared_buffer_registry). On the cuda backend the registry's
// ShmPinHooks page-lock that mapping once, at registration, with
// cudaHostRegister(cudaHostRegisterPortable): WriteFromBuffer/ReadToBuffer
// then hand the mapping to the copy engine, whose cudaMemcpyAsync DMAs
// straight between it and device memory (no pageable staging, no per-call
// pinning, which costs ~0.1 s per GB). The registry calls unpin
// (cudaHostUnregister) after every copy through the buffer drained and
// before munmap.
//
// Thread-safety: the hooks may run on any thread; each sets `device_ordinal`
// current for its call and restores the thread's previous device.
#ifndef GPUMIG_CORE_DEVICE_CUDA_CUDA_HOST_PIN_H_
#define GPUMIG_CORE_DEVICE_CUDA_CUDA_HOST_PIN_H_

#include <cstddef>

#include "absl/status/status.h"
#include "core/shm/shared_buffer_registry.h"

namespace gpumig {

// cudaHostRegister(addr, len, cudaHostRegisterPortable) on `device_ordinal`.
// RESOURCE_EXHAUSTED "cudaHostRegister: <name>: <text>" when the runtime
// refuses (out of page-locked memory, already registered, no device);
// UNAVAILABLE in a build without the CUDA toolkit.
absl::Status CudaHostPin(int device_ordinal, void* addr, size_t len);
// cudaHostUnregister(addr). Errors are dropped: the mapping goes anyway.
void CudaHostUnpin(int device_ordinal, void* addr);

// The registry hooks for a CudaDevice of `device_ordinal`.
shm::ShmPinHooks CudaShmPinHooks(int device_ordinal);

}  // namespace gpumig

#endif  // GPUMIG_CORE_DEVICE_CUDA_CUDA_HOST_PIN_H_
