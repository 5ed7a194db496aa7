// Batches against the single-op paths, in one run, 4 KiB objects:
//  * migrations/s: in-process (MemoryManager::Migrate + wait, as
//    migrate_bench), in-process MigrateBatch, through gpumigd one Migrate RPC
//    each (wait), and through MigrateBatch with 64, 256, 4096 entries (wait);
//  * create+destroy pairs/s: in-process, one RPC each, CreateBatch +
//    DestroyBatch with 64, 256, 4096 entries;
//  * fence array latency: last member's Signal() -> the array's callback.
// Prints one JSON object with rows and the ratios the issue asks for.
//
//   bazel run -c opt //tests/bench:batch_bench [-- --seconds=1]
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/fence/fence.h"
#include "core/fence/fence_array.h"
#include "core/manager/memory_manager.h"
#include "gpumig/v1/daemon.grpc.pb.h"
#include "gpumig/v1/objects.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "tests/bench/bench_manager.h"

ABSL_FLAG(double, seconds, 0.5, "minimum measuring time per row");
ABSL_FLAG(std::string, gpumigd, "", "gpumigd binary (default: runfiles)");

namespace gpumig {
namespace {

namespace v1 = ::gpumig::v1;
constexpr uint64_t kSize = 4096;
constexpr int kObjects = 4096;

struct Row {
  std::string name;
  int batch = 0;
  double ops_per_s = 0;
  // CPU time (user + system) per operation of this process and, for rows
  // through the daemon, of gpumigd: unlike the rates, hardly dependent on
  // what else the machine runs.
  double self_cpu_us_per_op = 0;
  double daemon_cpu_us_per_op = 0;
};

int64_t g_measured_ops = 0;  // operations of the last Measure(), warm-up too

// Runs `op` (which does `per_call` operations) for --seconds; ops/s.
template <typename Op>
double Measure(int per_call, Op op) {
  op();
  const absl::Duration min = absl::Seconds(absl::GetFlag(FLAGS_seconds));
  int64_t n = 0;
  const absl::Time start = absl::Now();
  absl::Duration elapsed;
  do {
    op();
    n += per_call;
    elapsed = absl::Now() - start;
  } while (elapsed < min || n < 3 * per_call);
  g_measured_ops = n + per_call;
  return n / absl::ToDoubleSeconds(elapsed);
}

double SelfCpuSeconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// utime + stime of `pid` from /proc/<pid>/stat (fields 14 and 15); 0 if
// unreadable.
double ProcCpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (pid <= 0 || !std::getline(in, line)) return 0;
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos) return 0;
  std::vector<std::string> f = absl::StrSplit(line.substr(paren + 2), ' ');
  // f[0] is field 3 (state): utime is field 14, stime 15.
  if (f.size() < 13) return 0;
  return (std::stod(f[11]) + std::stod(f[12])) / sysconf(_SC_CLK_TCK);
}

// One row: Measure() with the CPU of this process and of the daemon
// (`daemon` 0: in-process) per operation.
template <typename Op>
Row MeasureRow(const std::string& name, int per_call, pid_t daemon, Op op) {
  const double self0 = SelfCpuSeconds(), d0 = ProcCpuSeconds(daemon);
  Row row{name, per_call, Measure(per_call, op)};
  const double ops = static_cast<double>(g_measured_ops);
  row.self_cpu_us_per_op = (SelfCpuSeconds() - self0) * 1e6 / ops;
  if (daemon > 0) {
    row.daemon_cpu_us_per_op = (ProcCpuSeconds(daemon) - d0) * 1e6 / ops;
  }
  return row;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "batch_bench: %s\n", what.c_str());
  std::exit(1);
}

std::unique_ptr<MemoryManager> MakeManager() {
  absl::StatusOr<std::unique_ptr<MemoryManager>> mm = bench::MakeBenchManager();
  if (!mm.ok()) Die(mm.status().ToString());
  return *std::move(mm);
}

void InProcess(std::vector<Row>* rows) {
  auto mm = MakeManager();
  Principal me;
  me.name = "bench";
  MemoryManager::CreateRequest req;
  req.size = kSize;
  req.placements = {"smem", "lmem"};
  std::vector<uint64_t> ids;
  for (int i = 0; i < kObjects; ++i) {
    auto c = mm->CreateObject(me, req);
    if (!c.ok()) Die(c.status().ToString());
    ids.push_back(c->object_id);
  }
  bool in_lmem = false;
  rows->push_back(MeasureRow("inproc_migrate", 1, 0, [&] {
    auto f = mm->Migrate(me, ids[0], in_lmem ? "smem" : "lmem");
    if (!f.ok()) Die(f.status().ToString());
    (void)mm->WaitFence(me, *f, absl::InfiniteFuture());
    in_lmem = !in_lmem;
  }));
  for (int n : {64, 256, 4096}) {
    bool lmem = false;
    rows->push_back(MeasureRow("inproc_migrate_batch", n, 0, [&] {
      std::vector<MemoryManager::MigrateEntry> e(n);
      for (int i = 0; i < n; ++i) {
        e[i] = {ids[i], lmem ? "smem" : "lmem"};
      }
      auto r = mm->MigrateBatch(me, e);
      if (!r.ok()) Die(r.status().ToString());
      (void)mm->WaitFence(me, r->array_fence_id, absl::InfiniteFuture());
      lmem = !lmem;
    }));
  }
  rows->push_back(MeasureRow("inproc_create_destroy", 1, 0, [&] {
    auto c = mm->CreateObject(me, req);
    if (!c.ok()) Die(c.status().ToString());
    (void)mm->DestroyObject(me, c->object_id);
  }));
}

std::string FindDaemon(const char* argv0) {
  if (std::string f = absl::GetFlag(FLAGS_gpumigd); !f.empty()) return f;
  std::vector<std::string> roots;
  for (const char* var : {"RUNFILES_DIR", "TEST_SRCDIR"}) {
    if (const char* v = std::getenv(var); v != nullptr && *v != '\0') {
      roots.push_back(v);
    }
  }
  roots.push_back(absl::StrCat(argv0, ".runfiles"));
  for (const std::string& root : roots) {
    const std::string path = absl::StrCat(root, "/gpumig/daemon/gpumigd");
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  return ctx;
}

void ThroughDaemon(const std::string& binary, std::vector<Row>* rows) {
  std::string dir = "/tmp/gpumig-bbench-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) Die("mkdtemp");
  const std::string config = dir + "/gpumigd.textproto";
  const std::string socket = dir + "/gpumig.sock";
  {
    std::ofstream out(config);
    out << "backend: \"sim\"\n"
           "regions { name: \"lmem\" kind: LMEM size: \"256MiB\" aperture: "
           "\"64MiB\" }\n"
           "regions { name: \"smem\" kind: SMEM size: \"1GiB\" }\n"
           "log_level: \"warn\"\n";
  }
  const pid_t pid = fork();
  if (pid == 0) {
    if (freopen((dir + "/gpumigd.log").c_str(), "w", stderr) == nullptr) {
      _exit(127);
    }
    execl(binary.c_str(), binary.c_str(), ("--config=" + config).c_str(),
          ("--socket=" + socket).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  auto channel =
      grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials());
  auto daemon = v1::DaemonService::NewStub(channel);
  auto objects = v1::ObjectService::NewStub(channel);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (;;) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(200)));
    v1::PingRequest p;
    v1::PingResponse pr;
    if (daemon->Ping(&ctx, p, &pr).ok()) break;
    if (absl::Now() > deadline) Die("gpumigd did not start");
    absl::SleepFor(absl::Milliseconds(10));
  }
  rows->push_back(MeasureRow("rpc_ping", 1, pid, [&] {
    v1::PingRequest p;
    v1::PingResponse pr;
    if (!daemon->Ping(Ctx().get(), p, &pr).ok()) Die("ping");
  }));
  // kObjects objects via CreateBatch.
  std::vector<std::string> handles;
  {
    v1::CreateBatchRequest req;
    for (int i = 0; i < kObjects; ++i) {
      auto* e = req.add_entries();
      e->set_size_bytes(kSize);
      e->add_placements("smem");
      e->add_placements("lmem");
    }
    req.set_wait(true);
    v1::BatchResponse resp;
    grpc::Status st = objects->CreateBatch(Ctx().get(), req, &resp);
    if (!st.ok()) Die(st.error_message());
    for (const auto& r : resp.results()) handles.push_back(r.handle());
  }
  bool in_lmem = false;
  rows->push_back(MeasureRow("rpc_migrate", 1, pid, [&] {
    v1::MigrateObjectRequest req;
    req.set_handle(handles[0]);
    req.set_region(in_lmem ? "smem" : "lmem");
    req.set_wait(true);
    v1::MigrateObjectResponse resp;
    grpc::Status st = objects->Migrate(Ctx().get(), req, &resp);
    if (!st.ok()) Die(st.error_message());
    in_lmem = !in_lmem;
  }));
  for (int n : {64, 256, 4096}) {
    v1::MigrateBatchRequest to_lmem, to_smem;
    for (int i = 0; i < n; ++i) {
      to_lmem.add_entries()->set_handle(handles[i]);
      to_smem.add_entries()->set_handle(handles[i]);
    }
    to_lmem.set_region("lmem");
    to_smem.set_region("smem");
    to_lmem.set_wait(true);
    to_smem.set_wait(true);
    bool lmem = false;
    rows->push_back(MeasureRow("rpc_migrate_batch", n, pid, [&] {
      v1::BatchResponse resp;
      grpc::Status st =
          objects->MigrateBatch(Ctx().get(), lmem ? to_smem : to_lmem, &resp);
      if (!st.ok() || resp.failed() != 0) Die("migrate batch");
      lmem = !lmem;
    }));
  }
  rows->push_back(MeasureRow("rpc_create_destroy", 1, pid, [&] {
    v1::CreateObjectRequest req;
    req.set_size_bytes(kSize);
    req.add_placements("smem");
    v1::CreateObjectResponse resp;
    grpc::Status st = objects->Create(Ctx().get(), req, &resp);
    if (!st.ok()) Die(st.error_message());
    v1::DestroyObjectRequest d;
    d.set_handle(resp.object().handle());
    v1::DestroyObjectResponse dr;
    if (!objects->Destroy(Ctx().get(), d, &dr).ok()) {
      Die("destroy");
    }
  }));
  for (int n : {64, 256, 4096}) {
    v1::CreateBatchRequest creq;
    for (int i = 0; i < n; ++i) {
      auto* e = creq.add_entries();
      e->set_size_bytes(kSize);
      e->add_placements("smem");
    }
    rows->push_back(MeasureRow("rpc_create_destroy_batch", n, pid, [&] {
      v1::BatchResponse resp;
      grpc::Status st = objects->CreateBatch(Ctx().get(), creq, &resp);
      if (!st.ok() || resp.failed() != 0) Die("create batch");
      v1::DestroyBatchRequest d;
      for (const auto& r : resp.results()) {
        d.add_handles(r.handle());
      }
      v1::BatchResponse dr;
      st = objects->DestroyBatch(Ctx().get(), d, &dr);
      if (!st.ok() || dr.failed() != 0) Die("destroy batch");
    }));
  }
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  (void)std::system(absl::StrCat("rm -rf '", dir, "'").c_str());
}

// Last member's Signal() -> the array fence's callback, nanoseconds.
std::vector<double> ArrayLatency() {
  std::vector<double> ns;
  for (int round = 0; round < 20000; ++round) {
    std::vector<FenceRef> members;
    for (int i = 0; i < 8; ++i) members.push_back(Fence::Create("m"));
    auto array = FenceArray::Create("a", members);
    std::chrono::steady_clock::time_point t1;
    (void)array->fence()->AddCallback(
        [&t1](const Fence&) { t1 = std::chrono::steady_clock::now(); });
    for (int i = 0; i < 7; ++i) (void)members[i]->Signal();
    const auto t0 = std::chrono::steady_clock::now();
    (void)members[7]->Signal();
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  std::sort(ns.begin(), ns.end());
  return ns;
}

double Find(const std::vector<Row>& rows, const std::string& name, int batch) {
  for (const Row& r : rows) {
    if (r.name == name && r.batch == batch) return r.ops_per_s;
  }
  return 0;
}

}  // namespace
}  // namespace gpumig

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  using gpumig::Find;
  std::vector<gpumig::Row> rows;
  gpumig::InProcess(&rows);
  const std::string binary = gpumig::FindDaemon(argv[0]);
  if (binary.empty()) gpumig::Die("cannot find gpumigd (--gpumigd=PATH)");
  gpumig::ThroughDaemon(binary, &rows);
  const std::vector<double> lat = gpumig::ArrayLatency();
  std::printf("{\n  \"rows\": [\n");
  for (size_t i = 0; i < rows.size(); ++i) {
    std::printf(
        "    {\"case\": \"%s\", \"batch\": %d, \"ops_per_s\": %.0f, "
        "\"self_cpu_us_per_op\": %.2f, \"daemon_cpu_us_per_op\": %.2f}%s\n",
        rows[i].name.c_str(), rows[i].batch, rows[i].ops_per_s,
        rows[i].self_cpu_us_per_op, rows[i].daemon_cpu_us_per_op,
        i + 1 < rows.size() ? "," : "");
  }
  const double inproc = Find(rows, "inproc_migrate", 1);
  const double cd1 = Find(rows, "rpc_create_destroy", 1);
  std::printf("  ],\n  \"ratios\": {\n");
  for (int n : {64, 256, 4096}) {
    std::printf(
        "    \"migrate_batch_%d_to_inproc\": %.3f,\n"
        "    \"migrate_batch_%d_to_inproc_batch\": %.3f,\n"
        "    \"migrate_batch_%d_to_rpc_each\": %.2f,\n"
        "    \"create_destroy_batch_%d_to_rpc_each\": %.2f,\n",
        n, Find(rows, "rpc_migrate_batch", n) / inproc, n,
        Find(rows, "rpc_migrate_batch", n) /
            Find(rows, "inproc_migrate_batch", n),
        n, Find(rows, "rpc_migrate_batch", n) / Find(rows, "rpc_migrate", 1), n,
        Find(rows, "rpc_create_destroy_batch", n) / cd1);
  }
  std::printf("    \"rpc_migrate_to_inproc\": %.3f\n  },\n",
              Find(rows, "rpc_migrate", 1) / inproc);
  std::printf(
      "  \"array_signal_latency_ns\": {\"p50\": %.0f, \"p90\": %.0f, "
      "\"p99\": %.0f, \"members\": 8}\n}\n",
      lat[lat.size() / 2], lat[lat.size() * 9 / 10],
      lat[lat.size() * 99 / 100]);
  return 0;
}
