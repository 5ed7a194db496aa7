#include "daemon/config/config.h"

#include <grp.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/bytes.h"
#include "common/hostport.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace gpumig {
namespace daemon {
namespace {

constexpr uint64_t kPage = 4096;

absl::Status FieldError(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

// Collects the first parse error with its position (1-based, as editors
// count).
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (!error_.empty()) return;
    error_ = absl::StrCat(line + 1, ":", column + 1, ": ", message);
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

// Exactly one of a byte count and a size string; `bytes_name`/`text_name`
// are the two field names, `field` the prefix for errors. Unset: `fallback`.
absl::StatusOr<uint64_t> ResolveSize(
    const std::string& field, absl::string_view bytes_name, uint64_t bytes,
    absl::string_view text_name, const std::string& text, uint64_t fallback) {
  if (bytes != 0 && !text.empty()) {
    return FieldError(field, absl::StrCat("set either ", bytes_name, " or ",
                                          text_name, ", not both"));
  }
  if (!text.empty()) {
    absl::StatusOr<uint64_t> v = ParseByteSize(text);
    if (!v.ok()) return FieldError(field, v.status().message());
    return *v;
  }
  return bytes != 0 ? bytes : fallback;
}

bool ValidRegionName(absl::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  for (char c : name) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' ||
          c == '-')) {
      return false;
    }
  }
  return true;
}

bool GroupExists(const std::string& name) {
  struct group grp;
  struct group* result = nullptr;
  std::vector<char> buf(16384);
  return getgrnam_r(name.c_str(), &grp, buf.data(), buf.size(), &result) == 0 &&
         result != nullptr;
}

std::string Quote(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

}  // namespace

absl::StatusOr<uint64_t> ParseByteSize(absl::string_view text) {
  return ::gpumig::ParseByteSize(text, ByteSizeSyntax::kConfigFile);
}

absl::StatusOr<DaemonConfig> ParseConfigText(absl::string_view text,
                                             absl::string_view filename) {
  DaemonConfig config;
  google::protobuf::TextFormat::Parser parser;
  FirstErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(absl::StrCat(
        filename, ":",
        errors.error().empty() ? "1:1: parse error" : errors.error()));
  }
  return config;
}

absl::StatusOr<DaemonConfig> LoadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    std::string why = std::strerror(err);
    if (err == EACCES) {
      return absl::PermissionDeniedError(
          absl::StrCat("config ", path, ": ", why));
    }
    return absl::NotFoundError(absl::StrCat("config ", path, ": ", why));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfigText(ss.str(), path);
}

void ApplyOverrides(const Overrides& o, DaemonConfig* config) {
  auto* listeners = config->mutable_listeners();
  if (o.socket) listeners->mutable_unix_socket()->set_path(*o.socket);
  if (o.tcp_listen) listeners->mutable_tcp()->set_address(*o.tcp_listen);
  if (o.metrics_listen) config->set_metrics_address(*o.metrics_listen);
  if (o.tls_cert) listeners->mutable_tcp()->set_tls_cert(*o.tls_cert);
  if (o.tls_key) listeners->mutable_tcp()->set_tls_key(*o.tls_key);
  if (o.tls_client_ca) {
    listeners->mutable_tcp()->set_tls_client_ca(*o.tls_client_ca);
  }
  if (o.enable_fault_injection) {
    config->set_enable_fault_injection(*o.enable_fault_injection);
  }
  if (o.log_level) config->set_log_level(*o.log_level);
  if (o.backend) config->set_backend(*o.backend);
}

absl::StatusOr<Config> ValidateConfig(const DaemonConfig& in) {
  Config out;

  out.backend = in.backend().empty() ? "sim" : in.backend();
  if (out.backend != "sim" && out.backend != "cuda") {
    return FieldError("backend",
                      absl::StrCat("unknown backend ", Quote(out.backend),
                                   " (expected \"sim\" or \"cuda\")"));
  }

  // Regions.
  if (in.regions().empty()) {
    out.regions.push_back(RegionSpec{"lmem", true, 256ull << 20, 64ull << 20});
    out.regions.push_back(
        RegionSpec{"smem", false, 512ull << 20, 512ull << 20});
  }
  absl::flat_hash_set<std::string> names;
  bool seen_smem = false;
  for (int i = 0; i < in.regions_size(); ++i) {
    const auto& r = in.regions(i);
    const std::string f = absl::StrCat("regions[", i, "]");
    RegionSpec spec;
    spec.name = r.name();
    if (spec.name.empty()) return FieldError(f + ".name", "required");
    if (!ValidRegionName(spec.name)) {
      return FieldError(f + ".name",
                        absl::StrCat(Quote(spec.name),
                                     " is not 1-32 characters of [a-z0-9_-]"));
    }
    if (!names.insert(spec.name).second) {
      return FieldError(f + ".name", absl::StrCat("region ", Quote(spec.name),
                                                  " is defined twice"));
    }
    switch (r.kind()) {
      case gpumig::config::v1::LMEM:
        spec.lmem = true;
        if (seen_smem) {
          return FieldError(f + ".kind",
                            "LMEM regions must come before SMEM regions");
        }
        break;
      case gpumig::config::v1::SMEM:
        spec.lmem = false;
        seen_smem = true;
        break;
      default:
        return FieldError(f + ".kind", "required (LMEM or SMEM)");
    }
    absl::StatusOr<uint64_t> size = ResolveSize(
        f + ".size", "size_bytes", r.size_bytes(), "size", r.size(), 0);
    if (!size.ok()) return size.status();
    if (*size == 0) return FieldError(f + ".size", "required, > 0");
    if (*size % kPage != 0) {
      return FieldError(f + ".size", absl::StrCat(*size,
                                                  " bytes is not a multiple "
                                                  "of 4096"));
    }
    spec.size = *size;
    absl::StatusOr<uint64_t> aperture =
        ResolveSize(f + ".aperture", "aperture_bytes", r.aperture_bytes(),
                    "aperture", r.aperture(), spec.size);
    if (!aperture.ok()) return aperture.status();
    if (*aperture > spec.size) {
      return FieldError(f + ".aperture",
                        absl::StrCat("larger than size (", *aperture, " > ",
                                     spec.size, " bytes)"));
    }
    if (*aperture % kPage != 0) {
      return FieldError(
          f + ".aperture",
          absl::StrCat(*aperture, " bytes is not a multiple of 4096"));
    }
    if (!spec.lmem && *aperture != spec.size) {
      return FieldError(f + ".aperture",
                        "SMEM is CPU-visible in full: leave aperture unset");
    }
    spec.aperture = *aperture;
    out.regions.push_back(std::move(spec));
  }

  // Listeners.
  const auto& ux = in.listeners().unix_socket();
  if (!ux.path().empty()) out.socket_path = ux.path();
  if (out.socket_path.front() != '/') {
    return FieldError(
        "listeners.unix_socket.path",
        absl::StrCat(Quote(out.socket_path), " is not an absolute path"));
  }
  if (out.socket_path.size() >= 108) {
    return FieldError("listeners.unix_socket.path",
                      "longer than a unix socket address allows (107 bytes)");
  }
  if (!ux.mode().empty()) {
    uint32_t mode = 0;
    bool ok = ux.mode().size() <= 4;
    for (char c : ux.mode()) {
      if (c < '0' || c > '7') ok = false;
      mode = mode * 8 + (c - '0');
    }
    if (!ok) {
      return FieldError("listeners.unix_socket.mode",
                        absl::StrCat(Quote(ux.mode()),
                                     " is not octal permission bits like "
                                     "\"0660\""));
    }
    out.socket_mode = static_cast<mode_t>(mode);
  }
  out.socket_group = ux.group();
  if (!out.socket_group.empty() && !GroupExists(out.socket_group)) {
    return FieldError("listeners.unix_socket.group",
                      absl::StrCat("no such group ", Quote(out.socket_group)));
  }

  {
    const auto& sb = ux.shared_buffers();
    const std::string f = "listeners.unix_socket.shared_buffers";
    std::string name = sb.socket_name();
    const size_t slash = out.socket_path.rfind('/');
    const std::string dir = out.socket_path.substr(0, slash + 1);
    if (name.empty()) {
      std::string base = out.socket_path.substr(slash + 1);
      if (absl::EndsWith(base, ".sock")) {
        base.resize(base.size() - 5);
      }
      name = base + "-shm.sock";
    }
    if (name == "none") {
      out.shm_socket_path.clear();
    } else if (name.find('/') != std::string::npos || name == "." ||
               name == "..") {
      return FieldError(f + ".socket_name",
                        absl::StrCat(Quote(name), " is not a file name"));
    } else {
      out.shm_socket_path = dir + name;
      if (out.shm_socket_path == out.socket_path) {
        return FieldError(f + ".socket_name", "is the gRPC socket's name");
      }
      if (out.shm_socket_path.size() >= 108) {
        return FieldError(f + ".socket_name",
                          "longer than a unix socket address allows (107 "
                          "bytes)");
      }
    }
    if (sb.max_buffers_per_principal() > 4096) {
      return FieldError(f + ".max_buffers_per_principal", "at most 4096");
    }
    if (sb.max_buffers_per_principal() != 0) {
      out.shm_max_buffers_per_principal = sb.max_buffers_per_principal();
    }
    absl::StatusOr<uint64_t> per = ResolveSize(
        f + ".max_bytes_per_principal", "max_bytes_per_principal_bytes",
        sb.max_bytes_per_principal_bytes(), "max_bytes_per_principal",
        sb.max_bytes_per_principal(), out.shm_max_bytes_per_principal);
    if (!per.ok()) return per.status();
    out.shm_max_bytes_per_principal = *per;
    absl::StatusOr<uint64_t> total =
        ResolveSize(f + ".max_total_bytes", "max_total_bytes_bytes",
                    sb.max_total_bytes_bytes(), "max_total_bytes",
                    sb.max_total_bytes(), out.shm_max_total_bytes);
    if (!total.ok()) return total.status();
    out.shm_max_total_bytes = *total;
  }

  if (in.metrics_address() == "none") {
    out.metrics_address.clear();
  } else if (!in.metrics_address().empty()) {
    out.metrics_address = in.metrics_address();
    if (!SplitHostPort(out.metrics_address).ok()) {
      return FieldError("metrics_address",
                        absl::StrCat(Quote(out.metrics_address),
                                     " is not host:port (or \"none\")"));
    }
  }

  const auto& tcp = in.listeners().tcp();
  out.tcp_address = tcp.address();
  out.tls_cert = tcp.tls_cert();
  out.tls_key = tcp.tls_key();
  out.tls_client_ca = tcp.tls_client_ca();
  out.admin_subjects.assign(tcp.admin_subjects().begin(),
                            tcp.admin_subjects().end());
  if (!out.tcp_address.empty()) {
    if (!SplitHostPort(out.tcp_address).ok()) {
      return FieldError(
          "listeners.tcp.address",
          absl::StrCat(Quote(out.tcp_address), " is not host:port"));
    }
    // No unauthenticated TCP: mutual TLS needs all three files.
    if (out.tls_cert.empty()) {
      return FieldError("listeners.tcp.tls_cert",
                        "required with a TCP address (mutual TLS only)");
    }
    if (out.tls_key.empty()) {
      return FieldError("listeners.tcp.tls_key",
                        "required with a TCP address (mutual TLS only)");
    }
    if (out.tls_client_ca.empty()) {
      return FieldError("listeners.tcp.tls_client_ca",
                        "required with a TCP address (mutual TLS only)");
    }
  }

  out.admin_group = in.admin_group();
  if (!out.admin_group.empty() && !GroupExists(out.admin_group)) {
    return FieldError("admin_group",
                      absl::StrCat("no such group ", Quote(out.admin_group)));
  }

  // Quotas.
  for (int i = 0; i < in.quotas_size(); ++i) {
    const auto& q = in.quotas(i);
    const std::string f = absl::StrCat("quotas[", i, "]");
    if (q.principal().empty()) return FieldError(f + ".principal", "required");
    absl::StatusOr<uint64_t> bytes =
        ResolveSize(f + ".bytes", "bytes", q.bytes(), "size", q.size(), 0);
    if (!bytes.ok()) return bytes.status();
    if (!out.quotas.emplace(q.principal(), *bytes).second) {
      return FieldError(f + ".principal", absl::StrCat(Quote(q.principal()),
                                                       " has a quota already"));
    }
  }
  absl::StatusOr<uint64_t> def = ResolveSize(
      "default_quota", "default_quota_bytes", in.default_quota_bytes(),
      "default_quota", in.default_quota(), 0);
  if (!def.ok()) return def.status();
  out.default_quota = *def;

  out.enable_fault_injection = in.enable_fault_injection();
  if (!in.log_level().empty()) out.log_level = in.log_level();
  if (out.log_level != "debug" && out.log_level != "info" &&
      out.log_level != "warn" && out.log_level != "error") {
    return FieldError("log_level",
                      absl::StrCat(Quote(out.log_level),
                                   " is not debug, info, warn or error"));
  }
  if (in.fence_history() != 0) out.fence_history = in.fence_history();
  if (out.fence_history > (1u << 20)) {
    return FieldError("fence_history", "at most 1048576");
  }
  if (in.work_threads() != 0) out.work_threads = in.work_threads();
  if (out.work_threads > 64) return FieldError("work_threads", "at most 64");
  if (in.shutdown_grace_ms() != 0) {
    if (in.shutdown_grace_ms() > 600000) {
      return FieldError("shutdown_grace_ms", "at most 600000");
    }
    out.shutdown_grace = absl::Milliseconds(in.shutdown_grace_ms());
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> Config::Summary() const {
  std::vector<std::string> regions_text;
  for (const RegionSpec& r : regions) {
    regions_text.push_back(absl::StrCat(r.name, ":", r.lmem ? "lmem" : "smem",
                                        ":", r.size, ":", r.aperture));
  }
  std::vector<std::string> quota_text;
  for (const auto& [who, bytes] : quotas) {
    quota_text.push_back(absl::StrCat(who, "=", bytes));
  }
  std::sort(quota_text.begin(), quota_text.end());
  char mode[8];
  snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(socket_mode));
  auto or_dash = [](const std::string& s) { return s.empty() ? "-" : s; };
  return {
      {"backend", backend},
      {"regions", absl::StrJoin(regions_text, ",")},
      {"socket", socket_path},
      {"socket_mode", mode},
      {"socket_group", or_dash(socket_group)},
      {"tcp", or_dash(tcp_address)},
      {"metrics", or_dash(metrics_address)},
      {"admin_group", or_dash(admin_group)},
      {"admin_subjects", absl::StrCat(admin_subjects.size())},
      {"quotas", or_dash(absl::StrJoin(quota_text, ";"))},
      {"default_quota", absl::StrCat(default_quota)},
      {"fault_injection", enable_fault_injection ? "on" : "off"},
      {"log_level", log_level},
      {"fence_history", absl::StrCat(fence_history)},
      {"work_threads", absl::StrCat(work_threads)},
      {"shutdown_grace_ms",
       absl::StrCat(absl::ToInt64Milliseconds(shutdown_grace))},
  };
}

}  // namespace daemon
}  // namespace gpumig
