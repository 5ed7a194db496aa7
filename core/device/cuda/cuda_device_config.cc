// ValidateCudaDeviceConfig: see cuda_device.h. Built with or without the
// CUDA toolkit.
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/device/cuda/cuda_device.h"
#include "core/mem/region.h"

namespace gpumig {

absl::Status ValidateCudaDeviceConfig(const CudaDeviceConfig& config) {
  if (config.lmem_name.empty() || config.smem_name.empty()) {
    return absl::InvalidArgumentError("cuda device: a region name is empty");
  }
  if (config.lmem_name == config.smem_name) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cuda device: both regions are named \"", config.lmem_name, "\""));
  }
  if (config.chunk_size < 4096) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cuda device: chunk_size ", config.chunk_size, " is below 4096"));
  }
  // Region::Create's checks (sizes, power of two) on throwaway regions; it
  // allocates no memory of the size it describes.
  for (const RegionConfig& rc :
       {RegionConfig{config.lmem_name, RegionKind::kLmem, config.lmem_bytes, 0,
                     config.chunk_size},
        RegionConfig{config.smem_name, RegionKind::kSmem, config.smem_bytes,
                     config.smem_bytes, config.chunk_size}}) {
    absl::StatusOr<std::unique_ptr<Region>> region = Region::Create(rc);
    if (!region.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cuda device: ", region.status().message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace gpumig
