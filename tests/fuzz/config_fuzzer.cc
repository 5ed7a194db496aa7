// Fuzzes gpumigd's configuration loader (daemon/config/config.h): the
// text-format parser, the byte-size parser, command-line overrides and the
// validator. Oracles besides the sanitizers: errors are INVALID_ARGUMENT
// (the header's promise), and a config that validates obeys the rules the
// validator enforces (regions present, sizes positive multiples of 4096,
// aperture within size, names unique).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/config/config.h"

namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "gpumig config fuzzer: ORACLE VIOLATION: %s\n",
               what.c_str());
  std::abort();
}

void ExpectInvalidArgument(const absl::Status& s, const char* what) {
  if (s.code() != absl::StatusCode::kInvalidArgument) {
    Die(std::string(what) + " failed with " + s.ToString());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gpumig::daemon;  // NOLINT
  const absl::string_view text(reinterpret_cast<const char*>(data), size);

  // The byte-size parser on the first line.
  const absl::string_view first = text.substr(0, text.find('\n'));
  absl::StatusOr<uint64_t> bytes = ParseByteSize(first);
  if (!bytes.ok()) ExpectInvalidArgument(bytes.status(), "ParseByteSize");

  absl::StatusOr<DaemonConfig> parsed = ParseConfigText(text, "fuzz.textproto");
  if (!parsed.ok()) {
    ExpectInvalidArgument(parsed.status(), "ParseConfigText");
    return 0;
  }
  DaemonConfig config = *parsed;
  // Overrides, chosen by the input's length so both paths run.
  if (size % 3 == 1) {
    Overrides o;
    o.socket = "/tmp/gpumig-fuzz-override.sock";
    o.enable_fault_injection = true;
    o.log_level = size % 2 ? "debug" : "loud";
    o.backend = "sim";
    ApplyOverrides(o, &config);
  }
  absl::StatusOr<Config> valid = ValidateConfig(config);
  if (!valid.ok()) {
    // Unknown groups are looked up in the group database.
    if (valid.status().code() != absl::StatusCode::kNotFound) {
      ExpectInvalidArgument(valid.status(), "ValidateConfig");
    }
    return 0;
  }
  if (valid->regions.empty()) Die("a validated config without regions");
  std::set<std::string> names;
  for (const RegionSpec& r : valid->regions) {
    if (r.size == 0 || r.size % 4096 != 0) {
      Die("region " + r.name + " has size " + std::to_string(r.size));
    }
    if (r.aperture > r.size) Die("region " + r.name + ": aperture > size");
    if (!names.insert(r.name).second) Die("duplicate region " + r.name);
  }
  (void)valid->Summary();
  return 0;
}
