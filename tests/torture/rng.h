// Rng: the campaign's only source of randomness. A xoshiro256** generator
// seeded through SplitMix64, with its own range helpers (not <random>'s
// distributions, whose output the standard leaves to the library), so that a
// seed yields the same sequence on every platform and build. That is what
// makes a campaign's fault schedule and each client's choices replayable.
//
// Thread-compatible: one Rng per thread.
#ifndef GPUMIG_TESTS_TORTURE_RNG_H_
#define GPUMIG_TESTS_TORTURE_RNG_H_

#include <cstdint>

namespace gpumig::torture {

// One step of SplitMix64: advances *state and returns a well-mixed value.
inline uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// A seed for stream `stream` of campaign `seed` (client i uses stream i + 1,
// the fault schedule stream 0): independent, reproducible sequences.
inline uint64_t DeriveSeed(uint64_t seed, uint64_t stream) {
  uint64_t s = seed ^ (0x6a09e667f3bcc909ULL * (stream + 1));
  SplitMix64(&s);
  return SplitMix64(&s);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t s = seed;
    for (uint64_t& word : s_) word = SplitMix64(&s);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n); n > 0. (Multiply-shift; the bias is below 2^-32 for
  // the ranges used here.)
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >>
                                 64);
  }
  // Uniform in [lo, hi]; lo <= hi.
  uint64_t Between(uint64_t lo, uint64_t hi) { return lo + Below(hi - lo + 1); }
  // Uniform in [0, 1).
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // True with probability p.
  bool Chance(double p) { return Unit() < p; }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace gpumig::torture

#endif  // GPUMIG_TESTS_TORTURE_RNG_H_
