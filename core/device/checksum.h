// The checksum the copy engine computes for Exec: FNV-1a, 64 bit, over the
// bytes in order. Incremental: Fnv1a64(b, Fnv1a64(a)) == Fnv1a64(a + b).
#ifndef GPUMIG_CORE_DEVICE_CHECKSUM_H_
#define GPUMIG_CORE_DEVICE_CHECKSUM_H_

#include <cstddef>
#include <cstdint>

namespace gpumig {

inline constexpr uint64_t kFnv1a64Offset = 0xcbf29ce484222325ULL;
inline constexpr uint64_t kFnv1a64Prime = 0x100000001b3ULL;

inline uint64_t Fnv1a64(const uint8_t* data, size_t n,
                        uint64_t h = kFnv1a64Offset) {
  for (size_t i = 0; i < n; ++i) {
    h ^= data[i];
    h *= kFnv1a64Prime;
  }
  return h;
}

}  // namespace gpumig

#endif  // GPUMIG_CORE_DEVICE_CHECKSUM_H_
