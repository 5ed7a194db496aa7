#include "tests/bench/bench_daemon.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/gpumig_client.h"

namespace gpumig {
namespace bench {
namespace {

namespace gc = ::gpumig::client;

constexpr absl::Duration kStartLimit = absl::Seconds(30);
constexpr absl::Duration kStopLimit = absl::Seconds(20);

bool IsExecutable(const std::string& path) {
  return !path.empty() && access(path.c_str(), X_OK) == 0;
}

}  // namespace

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string FindDaemon(const char* argv0, const std::string& explicit_path) {
  if (!explicit_path.empty()) return explicit_path;
  if (const char* e = std::getenv("GPUMIGD"); e != nullptr && *e != '\0') {
    return e;
  }
  std::vector<std::string> roots;
  for (const char* var : {"RUNFILES_DIR", "TEST_SRCDIR"}) {
    if (const char* v = std::getenv(var); v != nullptr && *v != '\0') {
      roots.push_back(v);
    }
  }
  roots.push_back(absl::StrCat(argv0, ".runfiles"));
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) roots.push_back(absl::StrCat(std::string(self, n), ".runfiles"));
  for (const std::string& root : roots) {
    const std::string path = absl::StrCat(root, "/gpumig/daemon/gpumigd");
    if (IsExecutable(path)) return path;
  }
  return "";
}

double ProcessCpuSeconds(pid_t pid) {
  const std::string stat =
      ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  // Fields after the command (which may hold spaces) start past the last ')'.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::vector<absl::string_view> f =
      absl::StrSplit(absl::string_view(stat).substr(paren + 2), ' ');
  // f[0] is field 3 (state); utime and stime are fields 14 and 15.
  uint64_t utime = 0, stime = 0;
  if (f.size() < 13 || !absl::SimpleAtoi(f[11], &utime) ||
      !absl::SimpleAtoi(f[12], &stime)) {
    return 0;
  }
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

double SelfCpuSeconds() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec +
         u.ru_stime.tv_usec / 1e6;
}

BenchDaemon::~BenchDaemon() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (!dir_.empty()) {
    unlink(socket().c_str());
    unlink(config().c_str());
    if (keep_log_.empty()) unlink(log().c_str());
    rmdir(dir_.c_str());
  }
}

std::string BenchDaemon::log() const {
  return keep_log_.empty() ? dir_ + "/gpumigd.log" : keep_log_;
}

absl::Status BenchDaemon::Start(const std::string& binary,
                                const std::string& config_text,
                                const std::vector<std::string>& extra_args) {
  std::string t = "/tmp/gpumig-bench-XXXXXX";  // short: sun_path is 108 B
  if (mkdtemp(t.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", strerror(errno)));
  }
  dir_ = t;
  {
    std::ofstream out(config());
    out << config_text;
  }
  std::vector<std::string> args = {binary, "--config=" + config(),
                                   "--socket=" + socket()};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log_path = log();
  pid_ = fork();
  if (pid_ < 0) {
    return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  }
  if (pid_ == 0) {
    if (freopen(log_path.c_str(), "w", stderr) == nullptr) _exit(127);
    execv(argv[0], argv.data());
    std::fprintf(stderr, "execv %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  gc::ConnectOptions options;
  options.unix_socket = socket();
  absl::StatusOr<std::unique_ptr<gc::Client>> client =
      gc::Client::Connect(options);
  if (!client.ok()) return client.status();
  const absl::Time deadline = absl::Now() + kStartLimit;
  for (;;) {
    gc::CallOptions call;
    call.timeout = absl::Milliseconds(200);
    const absl::Status ping = (*client)->Ping(call);
    if (ping.ok()) return absl::OkStatus();
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::UnavailableError(
          absl::StrCat("gpumigd exited during start-up (status ", status,
                       "):\n", ReadFileOrEmpty(log_path)));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "gpumigd did not answer within ", absl::FormatDuration(kStartLimit),
          " (last: ", ping.ToString(), "):\n", ReadFileOrEmpty(log_path)));
    }
    absl::SleepFor(absl::Milliseconds(10));  // Retry interval.
  }
}

int BenchDaemon::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + kStopLimit;
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (absl::Now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return -1;
    }
    absl::SleepFor(absl::Milliseconds(10));  // Poll interval.
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace bench
}  // namespace gpumig
