// CudaCopyEngine: the CopyEngine of a CudaDevice. One stream per direction,
// commands serialised in one global order across both, each fence signalled
// by a host function queued behind its command (cuda_device.h states the
// ordering and error contract; cuda_copy_engine.cc its threads). Internal to
// this package: CudaDevice creates it and hands it out as a CopyEngine.
//
// Thread-safe. Shutdown() from a fence callback of this engine only stops it
// (its threads drain and exit; the destructor joins them).
#ifndef GPUMIG_CORE_DEVICE_CUDA_CUDA_COPY_ENGINE_H_
#define GPUMIG_CORE_DEVICE_CUDA_CUDA_COPY_ENGINE_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/device/cuda/cuda_helpers.h"
#include "core/device/queued_engine.h"
#include "core/fault/fault_injector.h"

namespace gpumig {
namespace cuda_internal {

class CudaCopyEngine : public QueuedCopyEngine {
 public:
  // An engine on `memory` (which must outlive it), consulting `faults` (may
  // be null) for engine-side faults. INTERNAL "<call>: ..." if a stream or
  // its staging or scratch buffer cannot be created.
  static absl::StatusOr<std::unique_ptr<CudaCopyEngine>> Create(
      const CudaMemory* memory, FaultInjector* faults);

  ~CudaCopyEngine() override = default;

  // Stops taking work: commands submitted from now on signal ABORTED, in
  // order; waits for the engine's threads unless called on one of them.
  virtual void Shutdown() = 0;

  // OK, or the error that failed the engine (a lost context): every later
  // command fails with "copy engine failed: ...".
  virtual absl::Status failed() const = 0;

 protected:
  CudaCopyEngine() : QueuedCopyEngine("cuda") {}
};

}  // namespace cuda_internal
}  // namespace gpumig

#endif  // GPUMIG_CORE_DEVICE_CUDA_CUDA_COPY_ENGINE_H_
