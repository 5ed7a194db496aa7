// A fake CUDA runtime for testing CudaDevice on machines without a GPU.
//
// Linking //core/device/cuda/testing:fake_cudart into a test (statically:
// the test sets linkstatic = True) defines the subset of the CUDA runtime C
// API that CudaDevice and the CUDA benchmark call, so those calls bind to
// this file instead of libcudart. It models what the engine's correctness
// rests on, and checks what a real runtime would refuse:
//
//  - one device (SetDeviceCount changes it); unified addressing.
//  - cudaMalloc'd "device" memory and cudaHostAlloc'd "pinned" memory are
//    host heap blocks, tracked, so cudaMemcpyAsync checks its cudaMemcpyKind
//    against where its pointers really are (a device pointer passed as host,
//    or an out-of-bounds range, is cudaErrorInvalidValue) and
//    cudaMemsetAsync refuses memory that is neither device nor pinned.
//  - each stream is a worker thread executing its operations in order;
//    events carry record generations; cudaStreamWaitEvent makes a stream
//    wait for the generation recorded at call time; synchronize calls wait.
//  - host functions run on ONE callback thread shared by all streams, and
//    the stream waits for them, as in the real runtime. Calling a CUDA API
//    from a host function fails with cudaErrorNotPermitted and is counted
//    (HostFunctionApiCalls()).
//  - pageable host memory: a device-to-host copy returns once done; a
//    host-to-device copy synchronises the stream and snapshots the source at
//    call time; pinned sources are read when the copy executes.
//  - cudaHostRegister'd host memory is pinned for copies (read when the
//    copy executes); overlapping registrations are refused
//    (cudaErrorHostMemoryAlreadyRegistered); cudaHostUnregister of an
//    address not registered is cudaErrorHostMemoryNotRegistered, and one
//    with copies through the range still queued is counted
//    (UnregistersWithCopiesPending()): unregistering under a DMA is the bug
//    the shared-buffer teardown must never have. RefusePageableHostCopies
//    makes host<->device copies of pageable memory fail, so a test can show
//    a path DMAs straight from registered memory.
//  - faults: the next N calls of an API can fail synchronously
//    (FailNextCalls); the context can be lost (LoseContext): queued work is
//    dropped unexecuted (host functions never run) and every call returns
//    the sticky error. PauseStreams() holds all queued work so a test can
//    lose the context while commands are in flight.
//
// What it cannot tell: real DMA and kernel behaviour, real timing, and the
// driver's own rules beyond those above. Thread-safe.
#ifndef GPUMIG_CORE_DEVICE_CUDA_TESTING_FAKE_CUDART_H_
#define GPUMIG_CORE_DEVICE_CUDA_TESTING_FAKE_CUDART_H_

#include <driver_types.h>

#include <cstdint>
#include <string>

namespace gpumig {
namespace fake_cuda {

// Restores the defaults: one device, no failures, context alive, streams
// running. Call between tests, with no CUDA work outstanding.
void Reset();
// cudaGetDeviceCount reports `n`; 0 makes it fail with cudaErrorNoDevice.
void SetDeviceCount(int n);
// The next `n` calls of `api` (e.g. "cudaMemcpyAsync") fail with `error`
// and do nothing.
void FailNextCalls(const std::string& api, cudaError_t error, int n = 1);
// Sticky failure: every call from now on returns `error`; queued and future
// work is dropped unexecuted.
void LoseContext(cudaError_t error);
// Holds every stream's queued work until ResumeStreams().
void PauseStreams();
void ResumeStreams();

// Host<->device cudaMemcpyAsync of pageable (neither cudaHostAlloc'd nor
// cudaHostRegister'd) memory fails with cudaErrorInvalidValue. Reset() ends
// it.
void RefusePageableHostCopies(bool refuse);

// Counters for assertions.
uint64_t LiveHostRegistrations();         // cudaHostRegister not undone
uint64_t RegisteredCopyBytes();           // copied to/from registered memory
uint64_t UnregistersWithCopiesPending();  // cudaHostUnregister under a copy
uint64_t ApiCalls(const std::string& api);
uint64_t HostFunctionApiCalls();  // CUDA calls made from a host function
uint64_t LiveAllocations();       // cudaMalloc + cudaHostAlloc not freed
uint64_t LiveStreams();

}  // namespace fake_cuda
}  // namespace gpumig

#endif  // GPUMIG_CORE_DEVICE_CUDA_TESTING_FAKE_CUDART_H_
