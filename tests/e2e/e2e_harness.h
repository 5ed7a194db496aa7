// The end-to-end harness shared by the tests of tests/e2e that drive the
// real gpumigd over its unix socket with raw gRPC stubs: temp directories
// short enough for socket paths, the daemon as a child process (started,
// waited for, stopped), the usual small test config, the five stubs and a
// deadline on every call. Test-only; header-only.
#ifndef GPUMIG_TESTS_E2E_E2E_HARNESS_H_
#define GPUMIG_TESTS_E2E_E2E_HARNESS_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gpumig/v1/daemon.grpc.pb.h"
#include "gpumig/v1/faults.grpc.pb.h"
#include "gpumig/v1/fences.grpc.pb.h"
#include "gpumig/v1/objects.grpc.pb.h"
#include "gpumig/v1/regions.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace gpumig {
namespace e2e {

namespace v1 = ::gpumig::v1;

inline constexpr uint64_t kMiB = 1 << 20;

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

inline std::string DaemonBinary() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  std::string base = srcdir != nullptr ? srcdir : ".";
  return absl::StrCat(base, "/", workspace != nullptr ? workspace : "gpumig",
                      "/daemon/gpumigd");
}

// A temp dir short enough for unix socket paths (TEST_TMPDIR can be long)
// and traversable by uid 65534.
class TempDir {
 public:
  TempDir() {
    std::string t = "/tmp/gpumig-e2e-XXXXXX";
    if (mkdtemp(t.data()) != nullptr) path_ = t;
    chmod(path_.c_str(), 0755);
  }
  ~TempDir() {
    if (!path_.empty()) {
      std::string cmd = absl::StrCat("rm -rf '", path_, "'");
      (void)std::system(cmd.c_str());
    }
  }
  const std::string& path() const { return path_; }
  std::string File(absl::string_view name) const {
    return absl::StrCat(path_, "/", name);
  }

 private:
  std::string path_;
};

inline bool CanConnect(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(),
              std::min(path.size(), sizeof(addr.sun_path) - 1));
  const bool ok =
      connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// Pattern only its writer produces: never 0.
inline std::string Pattern(uint64_t size, uint32_t tag) {
  std::string v(size, '\0');
  uint32_t x = tag * 2654435761u + 1;
  for (uint64_t i = 0; i < size; ++i) {
    x = x * 1103515245u + 12345u;
    v[i] = static_cast<char>((x >> 16) | 1);
  }
  return v;
}

// The gpumigd process under test.
class Daemon {
 public:
  struct Options {
    std::string config;  // text-format; the socket path is added by flag
    std::vector<std::string> flags;
    std::vector<std::string> env;  // extra KEY=VALUE
  };

  explicit Daemon(const TempDir& dir) : dir_(dir) {}
  ~Daemon() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  std::string socket() const { return dir_.File("gpumig.sock"); }
  std::string log_path() const { return dir_.File("gpumigd.log"); }
  std::string Log() const { return ReadAll(log_path()); }
  pid_t pid() const { return pid_; }
  // The exit code of a daemon that exited during Start(), else nullopt.
  std::optional<int> exit_code() const { return exit_code_; }

  // Starts gpumigd and waits (bounded) until its socket accepts.
  ::testing::AssertionResult Start(const Options& options) {
    const std::string config = dir_.File("gpumigd.textproto");
    WriteFile(config, options.config);
    std::vector<std::string> args = {DaemonBinary(), "--config=" + config,
                                     "--socket=" + socket()};
    args.insert(args.end(), options.flags.begin(), options.flags.end());
    pid_ = Spawn(args, options.env, log_path());
    if (pid_ < 0) return ::testing::AssertionFailure() << "fork failed";
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (!CanConnect(socket())) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return ::testing::AssertionFailure()
               << "gpumigd exited during start-up:\n"
               << Log();
      }
      if (absl::Now() > deadline) {
        return ::testing::AssertionFailure()
               << "gpumigd did not listen within 30 s:\n"
               << Log();
      }
      absl::SleepFor(absl::Milliseconds(5));  // Poll interval, not a sync.
    }
    return ::testing::AssertionSuccess();
  }

  // Sends `sig` and waits up to `limit` for the exit. The exit status, or
  // nullopt if it did not exit in time.
  std::optional<int> Stop(int sig, absl::Duration limit) {
    if (pid_ <= 0) return std::nullopt;
    kill(pid_, sig);
    const absl::Time deadline = absl::Now() + limit;
    for (;;) {
      int status = 0;
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (absl::Now() > deadline) return std::nullopt;
      absl::SleepFor(absl::Milliseconds(5));
    }
  }

  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel("unix:" + socket(),
                               grpc::InsecureChannelCredentials());
  }

  // fork/exec `args` with stdout+stderr to `log`.
  static pid_t Spawn(const std::vector<std::string>& args,
                     const std::vector<std::string>& env,
                     const std::string& log) {
    std::vector<char*> argv;
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<std::string> envs;
    for (char** e = environ; *e != nullptr; ++e) envs.push_back(*e);
    envs.insert(envs.end(), env.begin(), env.end());
    std::vector<char*> envp;
    for (const std::string& e : envs)
      envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    return pid;
  }

 private:
  const TempDir& dir_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// The usual test config: small regions, fault injection on.
inline std::string TestConfig(absl::string_view extra = "",
                              bool fault_injection = true) {
  return absl::StrCat(
      R"pb(
        regions { name: "lmem" kind: LMEM size: "16MiB" aperture: "4MiB" }
        regions { name: "smem" kind: SMEM size: "160MiB" }
        listeners { unix_socket { mode: "0666" } }
        shutdown_grace_ms: 3000
        log_level: "debug"
      )pb",
      "enable_fault_injection: ", fault_injection ? "true\n" : "false\n",
      extra);
}

struct Stubs {
  explicit Stubs(std::shared_ptr<grpc::Channel> ch)
      : channel(ch),
        objects(v1::ObjectService::NewStub(ch)),
        fences(v1::FenceService::NewStub(ch)),
        regions(v1::RegionService::NewStub(ch)),
        faults(v1::FaultService::NewStub(ch)),
        daemon(v1::DaemonService::NewStub(ch)) {}
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::ObjectService::Stub> objects;
  std::unique_ptr<v1::FenceService::Stub> fences;
  std::unique_ptr<v1::RegionService::Stub> regions;
  std::unique_ptr<v1::FaultService::Stub> faults;
  std::unique_ptr<v1::DaemonService::Stub> daemon;
};

// A context with a deadline, so no test can hang on an RPC.
inline std::unique_ptr<grpc::ClientContext> Ctx(
    absl::Duration timeout = absl::Seconds(30)) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

inline grpc::Status CreateObject(Stubs& s, uint64_t size,
                                 std::vector<std::string> placements,
                                 v1::CreateObjectResponse* out,
                                 bool require_cpu_access = false) {
  v1::CreateObjectRequest req;
  req.set_size_bytes(size);
  for (const std::string& p : placements) req.add_placements(p);
  req.set_require_cpu_access(require_cpu_access);
  req.set_label("e2e");
  return s.objects->Create(Ctx().get(), req, out);
}

inline grpc::Status ReadObject(Stubs& s, const std::string& handle,
                               uint64_t offset, uint64_t length,
                               std::string* out, uint32_t max_chunk = 0) {
  auto ctx = Ctx(absl::Seconds(60));
  v1::ReadRequest req;
  req.set_handle(handle);
  req.set_offset(offset);
  req.set_length(length);
  req.set_max_chunk_bytes(max_chunk);
  auto reader = s.objects->Read(ctx.get(), req);
  v1::ReadResponse resp;
  out->clear();
  uint64_t expect = offset;
  while (reader->Read(&resp)) {
    if (resp.offset() != expect || resp.data().empty() ||
        resp.data().size() > (max_chunk == 0 ? kMiB : max_chunk)) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "bad chunk framing");
    }
    expect += resp.data().size();
    out->append(resp.data());
  }
  return reader->Finish();
}

}  // namespace e2e
}  // namespace gpumig

#endif  // GPUMIG_TESTS_E2E_E2E_HARNESS_H_
