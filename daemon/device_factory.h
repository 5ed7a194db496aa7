// MakeDevice: the Device backend a config asks for. "sim" builds a SimDevice
// from the configured regions; "cuda" is not part of this build yet (when
// core/device/cuda lands, its factory call goes here and nowhere else).
#ifndef GPUMIG_DAEMON_DEVICE_FACTORY_H_
#define GPUMIG_DAEMON_DEVICE_FACTORY_H_

#include <memory>

#include "absl/status/statusor.h"
#include "core/device/device.h"
#include "core/fault/fault_injector.h"
#include "core/shm/shared_buffer_registry.h"
#include "daemon/config/config.h"

namespace gpumig {
namespace daemon {

// `faults` must outlive the device. UNAVAILABLE "backend cuda: not available
// in this build / no GPU"; INVALID_ARGUMENT for an unknown backend or
// regions the backend refuses; INTERNAL if its memory cannot be set up.
absl::StatusOr<std::unique_ptr<Device>> MakeDevice(const Config& config,
                                                   FaultInjector* faults);

// The shared-buffer registry's pin hooks for `device`: a CudaDevice pins
// each buffer once (cudaHostRegister, cuda_host_pin.h); other backends none.
shm::ShmPinHooks SharedBufferPinHooks(Device& device);

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_DEVICE_FACTORY_H_
