// gpumigd: the gpumig daemon. Wiring only: flags and config, signals, the
// Daemon (daemon.h), exit status.
//
// Exit status: 0 after a clean shutdown (SIGTERM/SIGINT); 2 for a bad
// command line or config (the message names the field); 1 if the daemon
// cannot start (device, socket, TLS).
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "daemon/config/config.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/services/rpc_env.h"

ABSL_FLAG(std::string, config, "",
          "Path of the text-format config file "
          "(daemon/config/gpumig/config/v1/config.proto). Without it: sim "
          "backend, lmem 256MiB (aperture 64MiB), smem 512MiB.");
ABSL_FLAG(std::string, socket, gpumig::daemon::kDefaultSocketPath,
          "Unix socket path (overrides listeners.unix_socket.path).");
ABSL_FLAG(std::string, tcp_listen, "",
          "host:port for the mutual-TLS TCP listener, e.g. 127.0.0.1:7443 "
          "(overrides listeners.tcp.address; needs the three TLS files).");
ABSL_FLAG(std::string, metrics_listen, "",
          "host:port of the Prometheus endpoint (overrides metrics_address; "
          "default 127.0.0.1:9464; \"none\" disables it; port 0 picks one).");
ABSL_FLAG(std::string, tls_cert, "", "PEM server certificate chain.");
ABSL_FLAG(std::string, tls_key, "", "PEM server private key.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle that client certificates must chain to.");
ABSL_FLAG(bool, enable_fault_injection, false,
          "Allow FaultService (admins only).");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warn or error.");
ABSL_FLAG(std::string, backend, "sim", "Device backend: sim or cuda.");

namespace {

// Whether flag `name` appears in argv (absl's IsSpecifiedOnCommandLine is not
// public in this Abseil): "--name", "--name=...", "--noname", single-dash
// forms too, up to a bare "--".
bool Given(int argc, char** argv, absl::string_view name) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a == "--") break;
    if (!absl::ConsumePrefix(&a, "--")) {
      if (!absl::ConsumePrefix(&a, "-")) continue;
    }
    a = a.substr(0, a.find('='));
    if (a == name || (absl::ConsumePrefix(&a, "no") && a == name)) return true;
  }
  return false;
}

std::optional<std::string> StringOverride(int argc, char** argv,
                                          const char* name,
                                          const absl::Flag<std::string>& f) {
  if (!Given(argc, argv, name)) return std::nullopt;
  return absl::GetFlag(f);
}

int Fail(int code, absl::string_view what, const absl::Status& status) {
  std::fprintf(stderr, "gpumigd: %.*s: %.*s\n", static_cast<int>(what.size()),
               what.data(), static_cast<int>(status.message().size()),
               status.message().data());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "gpumigd: the gpumig daemon (GPU memory regions, failsafe migration).\n"
      "Usage: gpumigd [--config=FILE] [flags overriding the file]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
#ifdef NDEBUG
  // Debian builds Abseil without NDEBUG, so absl::Mutex's deadlock detector
  // (a global graph updated on lock acquisitions) runs in production and
  // costs 3-8% of the daemon's CPU. Tests and debug builds keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  if (args.size() > 1) {
    std::fprintf(stderr, "gpumigd: unexpected argument \"%s\" (see --help)\n",
                 args[1]);
    return 2;
  }
  using gpumig::daemon::Log;
  using gpumig::daemon::LogLevel;

  // Signals are taken synchronously by this thread (sigwait); every thread
  // created from here on inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  gpumig::daemon::DaemonConfig file;
  const std::string config_path = absl::GetFlag(FLAGS_config);
  if (!config_path.empty()) {
    absl::StatusOr<gpumig::daemon::DaemonConfig> loaded =
        gpumig::daemon::LoadConfigFile(config_path);
    if (!loaded.ok()) return Fail(2, "config", loaded.status());
    file = *std::move(loaded);
  }
  gpumig::daemon::Overrides overrides;
  overrides.socket = StringOverride(argc, argv, "socket", FLAGS_socket);
  overrides.tcp_listen =
      StringOverride(argc, argv, "tcp_listen", FLAGS_tcp_listen);
  overrides.tls_cert = StringOverride(argc, argv, "tls_cert", FLAGS_tls_cert);
  overrides.tls_key = StringOverride(argc, argv, "tls_key", FLAGS_tls_key);
  overrides.tls_client_ca =
      StringOverride(argc, argv, "tls_client_ca", FLAGS_tls_client_ca);
  overrides.log_level =
      StringOverride(argc, argv, "log_level", FLAGS_log_level);
  overrides.backend = StringOverride(argc, argv, "backend", FLAGS_backend);
  overrides.metrics_listen =
      StringOverride(argc, argv, "metrics_listen", FLAGS_metrics_listen);
  if (Given(argc, argv, "enable_fault_injection")) {
    overrides.enable_fault_injection =
        absl::GetFlag(FLAGS_enable_fault_injection);
  }
  gpumig::daemon::ApplyOverrides(overrides, &file);
  absl::StatusOr<gpumig::daemon::Config> config =
      gpumig::daemon::ValidateConfig(file);
  if (!config.ok()) {
    return Fail(2,
                config_path.empty() ? std::string("invalid config")
                                    : "invalid config " + config_path,
                config.status());
  }
  gpumig::daemon::SetLogLevel(
      *gpumig::daemon::ParseLogLevel(config->log_level));
  {
    Log start(LogLevel::kInfo, "start");
    start.Kv("version", gpumig::daemon::kVersion)
        .Kv("config", config_path.empty() ? "-" : config_path);
    for (const auto& [key, value] : config->Summary()) start.Kv(key, value);
  }

  absl::StatusOr<std::unique_ptr<gpumig::daemon::Daemon>> daemon =
      gpumig::daemon::Daemon::Start(*config);
  if (!daemon.ok()) {
    Log(LogLevel::kError, "start_failed")
        .Kv("error", daemon.status().message());
    return Fail(1, "cannot start", daemon.status());
  }

  int sig = 0;
  while (sigwait(&signals, &sig) != 0) {
  }
  (*daemon)->Shutdown(sig == SIGTERM ? "SIGTERM" : "SIGINT");
  // Everything that guards client data is down; skip the gRPC server's
  // destructor and the library teardown, which can wait for seconds on
  // clients that keep their connections open (daemon.h).
#if defined(__SANITIZE_ADDRESS__)
  __lsan_do_leak_check();  // Leaks only: live objects are still reachable.
#endif
  std::fflush(nullptr);
  _exit(0);
}
