// Sanitizer defaults for binaries that run the real CUDA runtime (tests and
// the benchmark on a GPU machine). Without a GPU nothing here matters.
//
//  - ASan reserves a "shadow gap" the CUDA driver wants to map device memory
//    into; protect_shadow_gap=0 leaves it usable.
//  - The CUDA driver and runtime keep allocations until process exit; LSan
//    would report them. Suppressed by library, so our own leaks still count.
//
// ASAN_OPTIONS from the environment (.bazelrc's --config=asan sets some)
// override only the keys they name.
extern "C" {

const char* __asan_default_options() { return "protect_shadow_gap=0"; }

const char* __lsan_default_suppressions() {
  return "leak:libcuda.so\n"
         "leak:libcudart.so\n"
         "leak:libnvidia-\n";
}

}  // extern "C"
