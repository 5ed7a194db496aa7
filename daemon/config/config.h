// gpumigd configuration: the text-format file (gpumig/config/v1/config.proto
// documents every field), command-line overrides, and validation into the
// resolved `Config` the daemon runs with.
//
// Error messages name the offending field the way a person would write it
// in the file, e.g. "regions[1].aperture: larger than size (...)"; parse
// errors name the file, line and column.
//
// Thread-compatible (plain values and free functions).
#ifndef GPUMIG_DAEMON_CONFIG_CONFIG_H_
#define GPUMIG_DAEMON_CONFIG_CONFIG_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gpumig/config/v1/config.pb.h"

namespace gpumig {
namespace daemon {

using ::gpumig::config::v1::DaemonConfig;

inline constexpr char kDefaultSocketPath[] = "/run/gpumig/gpumig.sock";

// One validated region.
struct RegionSpec {
  std::string name;
  bool lmem = true;
  uint64_t size = 0;
  uint64_t aperture = 0;  // SMEM: == size
};

// The validated configuration, defaults filled in.
struct Config {
  std::string backend = "sim";
  std::vector<RegionSpec> regions;

  std::string socket_path = kDefaultSocketPath;
  mode_t socket_mode = 0660;
  std::string socket_group;  // "" = leave as created

  // The shared-buffer registration socket (listeners.unix_socket.
  // shared_buffers): "" = off; else a path in socket_path's directory.
  std::string shm_socket_path;
  uint64_t shm_max_buffers_per_principal = 64;
  uint64_t shm_max_bytes_per_principal = uint64_t{4} << 30;
  uint64_t shm_max_total_bytes = uint64_t{16} << 30;

  std::string tcp_address;  // "" = no TCP listener
  std::string tls_cert, tls_key, tls_client_ca;
  std::vector<std::string> admin_subjects;

  std::string admin_group;  // "" = only uid 0
  absl::flat_hash_map<std::string, uint64_t> quotas;
  uint64_t default_quota = 0;  // 0 = unlimited

  bool enable_fault_injection = false;
  std::string log_level = "info";
  uint32_t fence_history = 4096;
  uint32_t work_threads = 2;
  absl::Duration shutdown_grace = absl::Seconds(5);
  std::string metrics_address = "127.0.0.1:9464";  // "" = no endpoint

  // key/value pairs describing the effective config, for the start-up log.
  std::vector<std::pair<std::string, std::string>> Summary() const;
};

// Parses a byte size in the config file's syntax (common/bytes.h,
// ByteSizeSyntax::kConfigFile): a decimal number with an optional binary
// unit, "4096", "256MiB", "64 MiB", "1GiB" (units B, KiB, MiB, GiB, TiB).
// INVALID_ARGUMENT for anything else (decimal units like "MB" included) or
// overflow.
absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text);

// Parses text-format `text`; `filename` only labels errors.
// INVALID_ARGUMENT "FILE:LINE:COL: <protobuf's message>" on a syntax error or
// an unknown field.
absl::StatusOr<DaemonConfig> ParseConfigText(absl::string_view text,
                                             absl::string_view filename);
// Reads and parses a file. NOT_FOUND / PERMISSION_DENIED if unreadable.
absl::StatusOr<DaemonConfig> LoadConfigFile(const std::string& path);

// Command-line values that replace the file's (unset: keep the file's).
struct Overrides {
  std::optional<std::string> socket;
  std::optional<std::string> tcp_listen;
  std::optional<std::string> tls_cert, tls_key, tls_client_ca;
  std::optional<bool> enable_fault_injection;
  std::optional<std::string> log_level;
  std::optional<std::string> backend;
  std::optional<std::string> metrics_listen;
};
void ApplyOverrides(const Overrides& overrides, DaemonConfig* config);

// Checks every field and fills defaults. INVALID_ARGUMENT naming the field.
// Looks up admin_group and listeners.unix_socket.group in the group database.
absl::StatusOr<Config> ValidateConfig(const DaemonConfig& config);

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_CONFIG_CONFIG_H_
