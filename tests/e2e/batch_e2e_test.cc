// End-to-end tests of the ObjectService batch RPCs (CreateBatch,
// MigrateBatch, DestroyBatch) and the fence array, through the real gpumigd
// on a unix socket. The daemon harness is copied from daemon_e2e_test.cc.
// Per-entry PERMISSION_DENIED and unknown-state entries are covered in
// core/manager/batch_test.cc (one process, two principals).
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
#include "gtest/gtest.h"

namespace gpumig {
namespace {

namespace v1 = ::gpumig::v1;
constexpr uint64_t kMiB = 1 << 20;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string DaemonBinary() {
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

bool CanConnect(const std::string& path) {
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
std::string Pattern(uint64_t size, uint32_t tag) {
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
std::string TestConfig(absl::string_view extra = "",
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
std::unique_ptr<grpc::ClientContext> Ctx(
    absl::Duration timeout = absl::Seconds(30)) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

class BatchE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<Daemon>(dir_);
    ASSERT_TRUE(daemon_->Start({TestConfig()}));
    stubs_ = std::make_unique<Stubs>(daemon_->Channel());
  }
  // Creates n objects of `size` in smem via CreateBatch; returns handles.
  std::vector<std::string> CreateMany(int n, uint64_t size = 4096) {
    v1::CreateBatchRequest req;
    for (int i = 0; i < n; ++i) {
      v1::CreateObjectRequest* e = req.add_entries();
      e->set_size_bytes(size);
      e->add_placements("smem");
      e->add_placements("lmem");
    }
    req.set_wait(true);
    v1::BatchResponse resp;
    grpc::Status st = stubs_->objects->CreateBatch(Ctx().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    std::vector<std::string> handles;
    for (const auto& r : resp.results()) {
      EXPECT_EQ(r.error_code(), 0) << r.error_message();
      handles.push_back(r.handle());
    }
    return handles;
  }
  std::string RegionOf(const std::string& handle) {
    v1::GetObjectRequest req;
    req.set_handle(handle);
    v1::Object obj;
    grpc::Status st = stubs_->objects->Get(Ctx().get(), req, &obj);
    return st.ok() ? obj.region() : "?";
  }
  bool Alive() {
    v1::PingRequest req;
    v1::PingResponse resp;
    return stubs_->daemon->Ping(Ctx().get(), req, &resp).ok();
  }
  TempDir dir_;
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<Stubs> stubs_;
};

TEST_F(BatchE2eTest, CreateMigrateDestroyWithArrayFence) {
  std::vector<std::string> handles = CreateMany(16);
  ASSERT_EQ(handles.size(), 16u);
  v1::MigrateBatchRequest req;
  for (const auto& h : handles) req.add_entries()->set_handle(h);
  req.set_region("lmem");
  req.set_wait(true);
  v1::BatchResponse resp;
  grpc::Status st = stubs_->objects->MigrateBatch(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.results_size(), 16);
  EXPECT_EQ(resp.succeeded(), 16u);
  EXPECT_EQ(resp.failed(), 0u);
  ASSERT_NE(resp.fence_id(), 0u);
  EXPECT_EQ(resp.fence().kind(), v1::FENCE_KIND_ARRAY);
  EXPECT_EQ(resp.fence().state(), v1::FENCE_STATE_SIGNALED);
  EXPECT_EQ(resp.fence().outcome(), v1::FENCE_OUTCOME_BLIT_OK);
  EXPECT_EQ(resp.fence().array().members(), 16u);
  EXPECT_EQ(resp.fence().array().blit_ok(), 16u);
  EXPECT_EQ(resp.fence().array().member_fence_ids_size(), 16);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(resp.results(i).handle(), handles[i]);  // request order
    EXPECT_EQ(resp.fence().array().member_fence_ids(i),
              resp.results(i).fence_id());
    EXPECT_EQ(RegionOf(handles[i]), "lmem");
  }
  // FenceService.Get understands the array.
  v1::GetFenceRequest get;
  get.set_fence_id(resp.fence_id());
  v1::FenceStatus fs;
  ASSERT_TRUE(stubs_->fences->Get(Ctx().get(), get, &fs).ok());
  EXPECT_EQ(fs.kind(), v1::FENCE_KIND_ARRAY);
  EXPECT_EQ(fs.array().blit_ok(), 16u);

  v1::DestroyBatchRequest d;
  for (const auto& h : handles) d.add_handles(h);
  v1::BatchResponse dresp;
  ASSERT_TRUE(stubs_->objects->DestroyBatch(Ctx().get(), d, &dresp).ok());
  EXPECT_EQ(dresp.succeeded(), 16u);
  v1::BatchResponse again;
  ASSERT_TRUE(stubs_->objects->DestroyBatch(Ctx().get(), d, &again).ok());
  EXPECT_EQ(again.failed(), 16u);
  EXPECT_EQ(again.results(0).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(BatchE2eTest, MalformedBatchesAreRefusedWhole) {
  std::vector<std::string> handles = CreateMany(2);
  ASSERT_EQ(handles.size(), 2u);
  v1::BatchResponse resp;
  {  // zero entries
    v1::MigrateBatchRequest req;
    req.set_region("lmem");
    grpc::Status st = stubs_->objects->MigrateBatch(Ctx().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(st.error_message(), "entries"));
  }
  {  // one over the maximum
    v1::DestroyBatchRequest req;
    for (int i = 0; i < 4097; ++i) req.add_handles(handles[0]);
    grpc::Status st = stubs_->objects->DestroyBatch(Ctx().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(st.error_message(), "4096"))
        << st.error_message();
  }
  {  // duplicate handles
    v1::MigrateBatchRequest req;
    req.add_entries()->set_handle(handles[0]);
    req.add_entries()->set_handle(handles[1]);
    req.add_entries()->set_handle(handles[0]);
    req.set_region("lmem");
    grpc::Status st = stubs_->objects->MigrateBatch(Ctx().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(st.error_message(), "entries[2]"))
        << st.error_message();
  }
  {  // a bad handle and an unknown region name their entry
    v1::MigrateBatchRequest req;
    req.add_entries()->set_handle(handles[0]);
    req.add_entries()->set_handle("not-a-handle");
    req.set_region("lmem");
    grpc::Status st = stubs_->objects->MigrateBatch(Ctx().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(st.error_message(), "entries[1].handle"))
        << st.error_message();
    v1::MigrateBatchRequest r2;
    r2.add_entries()->set_handle(handles[0]);
    r2.add_entries()->set_handle(handles[1]);
    r2.mutable_entries(1)->set_region("nowhere");
    r2.set_region("lmem");
    st = stubs_->objects->MigrateBatch(Ctx().get(), r2, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(st.error_message(), "entries[1].region"))
        << st.error_message();
  }
  {  // a create entry with a bad size
    v1::CreateBatchRequest req;
    req.add_entries()->set_size_bytes(4096);
    req.mutable_entries(0)->add_placements("smem");
    req.add_entries()->set_size_bytes(100);
    req.mutable_entries(1)->add_placements("smem");
    grpc::Status st = stubs_->objects->CreateBatch(Ctx().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(st.error_message(), "entries[1].size_bytes"))
        << st.error_message();
  }
  // Nothing changed.
  EXPECT_EQ(RegionOf(handles[0]), "smem");
  EXPECT_EQ(RegionOf(handles[1]), "smem");
  v1::ListObjectsRequest list;
  v1::ListObjectsResponse objs;
  ASSERT_TRUE(stubs_->objects->List(Ctx().get(), list, &objs).ok());
  EXPECT_EQ(objs.objects_size(), 2);
}

TEST_F(BatchE2eTest, BatchLargerThanTheRegionFailsPerEntry) {
  // lmem is 16 MiB: 20 objects of 1 MiB can never all fit.
  std::vector<std::string> handles = CreateMany(20, kMiB);
  ASSERT_EQ(handles.size(), 20u);
  v1::MigrateBatchRequest req;
  for (const auto& h : handles) req.add_entries()->set_handle(h);
  req.set_region("lmem");
  req.set_wait(true);
  v1::BatchResponse resp;
  grpc::Status st = stubs_->objects->MigrateBatch(Ctx().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  for (const auto& r : resp.results()) {
    EXPECT_TRUE(r.error_code() == 0 ||
                r.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED)
        << r.error_message();
  }
  EXPECT_EQ(resp.fence().state(), v1::FENCE_STATE_SIGNALED);
  EXPECT_TRUE(Alive());
}

TEST_F(BatchE2eTest, ClientCancellingMidBatchLeavesTheDaemonServing) {
  std::vector<std::string> handles = CreateMany(4096);
  ASSERT_EQ(handles.size(), 4096u);
  v1::MigrateBatchRequest req;
  for (const auto& h : handles) req.add_entries()->set_handle(h);
  req.set_region("lmem");
  req.set_wait(true);
  v1::BatchResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(1)));
  grpc::Status st = stubs_->objects->MigrateBatch(&ctx, req, &resp);
  EXPECT_TRUE(st.ok() ||
              st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
              st.error_code() == grpc::StatusCode::CANCELLED)
      << st.error_code() << " " << st.error_message();
  EXPECT_TRUE(Alive());
  // Every object is still there and in one region or the other.
  for (int i = 0; i < 4096; i += 512) {
    const std::string r = RegionOf(handles[i]);
    EXPECT_TRUE(r == "smem" || r == "lmem") << r;
  }
}

}  // namespace
}  // namespace gpumig
