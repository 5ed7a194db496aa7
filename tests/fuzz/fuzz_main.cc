// Replay driver for gpumig's fuzz targets in ordinary builds (gcc, with or
// without --config=asan): runs LLVMFuzzerTestOneInput over every file named
// on the command line and every file in every directory named there (one
// level, sorted), the way `fuzzer -runs=0 DIR` does under libFuzzer.
// Arguments starting with '-' are libFuzzer flags and are ignored, so the
// same test arguments work in both builds. Exits 1 if no input was found.
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc,
                                                          char*** argv);
// Optional: a target's clean shutdown after the last input.
extern "C" __attribute__((weak)) void GpumigFuzzTeardown();

namespace {

bool IsDir(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> Inputs(const std::string& path) {
  if (!IsDir(path)) return {path};
  std::vector<std::string> files;
  if (DIR* dir = opendir(path.c_str())) {
    while (dirent* e = readdir(dir)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      const std::string full = path + "/" + name;
      if (!IsDir(full)) files.push_back(full);
    }
    closedir(dir);
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  // Tells targets that inputs are seeds that must be well-formed.
  setenv("GPUMIG_FUZZ_REPLAY", "1", 1);
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  size_t ran = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.empty() || arg[0] == '-') continue;
    for (const std::string& file : Inputs(arg)) {
      std::ifstream in(file, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "fuzz_main: cannot read %s\n", file.c_str());
        return 1;
      }
      const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                    std::istreambuf_iterator<char>());
      std::fprintf(stderr, "fuzz_main: %s (%zu bytes)\n", file.c_str(),
                   bytes.size());
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()),
                             bytes.size());
      ++ran;
    }
  }
  if (GpumigFuzzTeardown != nullptr) GpumigFuzzTeardown();
  std::fprintf(stderr, "fuzz_main: replayed %zu inputs\n", ran);
  if (ran == 0) {
    std::fprintf(stderr, "fuzz_main: no inputs (give files or directories)\n");
    return 1;
  }
  return 0;
}
