// libFuzzer entry point of the service fuzzers (service_harness.h): the
// BUILD file compiles it once per target with
//   GPUMIG_FUZZ_SERVICES  which services' requests the input may send
//                         (a gpumig::fuzz::Services mask), and
//   GPUMIG_FUZZ_SETUP     1: create objects, fences and a fault first.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/service_harness.h"

#ifndef GPUMIG_FUZZ_SERVICES
#define GPUMIG_FUZZ_SERVICES 0x1f
#endif
#ifndef GPUMIG_FUZZ_SETUP
#define GPUMIG_FUZZ_SETUP 0
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return gpumig::fuzz::RunServiceInput(data, size, GPUMIG_FUZZ_SERVICES,
                                       GPUMIG_FUZZ_SETUP != 0);
}

// Called by the replay driver (fuzz_main.cc) after the last input.
extern "C" void GpumigFuzzTeardown() { gpumig::fuzz::ShutdownServiceHarness(); }
