// gRPC server threading, in one run: the synchronous API gpumigd serves
// with (grpc::Service, a thread per in-flight call from gRPC's pool) against
// gRPC 1.51's callback API (grpc::CallbackService, reactors on gRPC's own
// event-engine threads), for the empty RPC (DaemonService.Ping) and for a
// batch (ObjectService.MigrateBatch of 64 4 KiB objects, wait false).
//
//   bazel run -c opt //tests/bench:callback_bench [-- --seconds=1
//   --threads=1,8]
//
// Two servers in this process, each on its own unix socket in a fresh temp
// dir, built with the daemon's sync options (CQ_TIMEOUT_MSEC 100). Both
// servers' handlers run the same body on one MemoryManager (sim device): the
// batch converts the request, calls MemoryManager::MigrateBatch (which takes
// the placement lock briefly and never waits for a fence) and converts the
// per-entry results -- so the only difference is the threading model. The
// callback handlers never block: they finish their reactor inline.
//
// Prints one JSON object: rows {"server", "rpc", "threads", "ops_per_s"}
// (the median of --repetitions runs, the servers interleaved), and "ratios"
// callback/sync per rpc and thread count. The decision rule
// (docs/architecture.md): gpumigd moves to the callback API only if it is at
// least 1.3x on the empty RPC.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/manager/memory_manager.h"
#include "gpumig/v1/daemon.grpc.pb.h"
#include "gpumig/v1/objects.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "tests/bench/bench_manager.h"

ABSL_FLAG(double, seconds, 1.0, "measuring time per row");
ABSL_FLAG(std::string, threads, "1,8", "client thread counts");
ABSL_FLAG(int, batch, 64, "entries per MigrateBatch");
ABSL_FLAG(int, repetitions, 3,
          "runs of each row, sync and callback interleaved; the median is "
          "reported");

namespace gpumig {
namespace {

namespace v1 = ::gpumig::v1;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "callback_bench: %s\n", what.c_str());
  std::exit(1);
}

std::unique_ptr<MemoryManager> MakeManager() {
  absl::StatusOr<std::unique_ptr<MemoryManager>> mm = bench::MakeBenchManager();
  if (!mm.ok()) Die(mm.status().ToString());
  return *std::move(mm);
}

Principal Me() {
  Principal p;
  p.name = "bench";
  return p;
}

// The batch body both servers run: ids are "obj-<n>" handles.
grpc::Status MigrateBody(MemoryManager* mm, const v1::MigrateBatchRequest& req,
                         v1::BatchResponse* resp) {
  std::vector<MemoryManager::MigrateEntry> entries(req.entries_size());
  for (int i = 0; i < req.entries_size(); ++i) {
    uint64_t id = 0;
    if (!absl::SimpleAtoi(absl::string_view(req.entries(i).handle()).substr(4),
                          &id)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "handle");
    }
    entries[i].id = id;
    entries[i].region = req.region();
  }
  absl::StatusOr<MemoryManager::BatchResult> r =
      mm->MigrateBatch(Me(), entries);
  if (!r.ok()) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        std::string(r.status().message()));
  }
  resp->set_fence_id(r->array_fence_id);
  resp->mutable_results()->Reserve(static_cast<int>(r->entries.size()));
  uint32_t ok = 0;
  for (size_t i = 0; i < r->entries.size(); ++i) {
    const MemoryManager::BatchEntry& e = r->entries[i];
    v1::BatchResult* out = resp->add_results();
    out->set_error_code(static_cast<int32_t>(e.status.code()));
    out->set_handle(req.entries(static_cast<int>(i)).handle());
    out->set_fence_id(e.fence_id);
    if (e.status.ok()) ++ok;
  }
  resp->set_succeeded(ok);
  resp->set_failed(static_cast<uint32_t>(r->entries.size()) - ok);
  return grpc::Status::OK;
}

class SyncDaemon final : public v1::DaemonService::Service {
  grpc::Status Ping(grpc::ServerContext*, const v1::PingRequest*,
                    v1::PingResponse*) override {
    return grpc::Status::OK;
  }
};

class SyncObjects final : public v1::ObjectService::Service {
 public:
  explicit SyncObjects(MemoryManager* mm) : mm_(mm) {}
  grpc::Status MigrateBatch(grpc::ServerContext*,
                            const v1::MigrateBatchRequest* req,
                            v1::BatchResponse* resp) override {
    return MigrateBody(mm_, *req, resp);
  }

 private:
  MemoryManager* const mm_;
};

class CallbackDaemon final : public v1::DaemonService::CallbackService {
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* ctx,
                                 const v1::PingRequest*,
                                 v1::PingResponse*) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

class CallbackObjects final : public v1::ObjectService::CallbackService {
 public:
  explicit CallbackObjects(MemoryManager* mm) : mm_(mm) {}
  grpc::ServerUnaryReactor* MigrateBatch(grpc::CallbackServerContext* ctx,
                                         const v1::MigrateBatchRequest* req,
                                         v1::BatchResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(MigrateBody(mm_, *req, resp));  // Never waits.
    return reactor;
  }

 private:
  MemoryManager* const mm_;
};

std::unique_ptr<grpc::Server> Serve(const std::string& socket,
                                    std::vector<grpc::Service*> services) {
  grpc::ServerBuilder builder;
  builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::CQ_TIMEOUT_MSEC, 100);
  for (grpc::Service* s : services) builder.RegisterService(s);
  builder.AddListeningPort("unix:" + socket, grpc::InsecureServerCredentials());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) Die("cannot serve on " + socket);
  return server;
}

struct Row {
  std::string server, rpc;
  int threads = 0;
  double ops_per_s = 0;
};

// `threads` client threads, each with its own channel, run `call` back to
// back for --seconds after a warm-up; operations per second in all.
template <typename Call>
double Drive(const std::string& socket, int threads, Call call) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int t = 0; t < threads; ++t) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);  // one connection each
    channels.push_back(grpc::CreateCustomChannel(
        "unix:" + socket, grpc::InsecureChannelCredentials(), args));
  }
  std::atomic<bool> go{false}, stop{false};
  std::atomic<int> ready{0};
  std::atomic<int64_t> done{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) call(channels[t], t);  // warm-up
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      int64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        call(channels[t], t);
        ++n;
      }
      done.fetch_add(n);
    });
  }
  while (ready.load() < threads) absl::SleepFor(absl::Milliseconds(1));
  go.store(true);
  const absl::Time start = absl::Now();
  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_seconds)));
  stop.store(true);
  for (std::thread& th : pool) th.join();
  return done.load() / absl::ToDoubleSeconds(absl::Now() - start);
}

int Main() {
  char tmpl[] = "/tmp/callback_bench.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Die("mkdtemp failed");
  const std::string dir = tmpl;
  std::unique_ptr<MemoryManager> mm = MakeManager();
  const int batch = absl::GetFlag(FLAGS_batch);
  std::vector<int> thread_counts;
  for (absl::string_view t :
       absl::StrSplit(absl::GetFlag(FLAGS_threads), ',')) {
    int n = 0;
    if (!absl::SimpleAtoi(t, &n) || n < 1) Die("bad --threads");
    thread_counts.push_back(n);
  }
  int max_threads = 1;
  for (int n : thread_counts) max_threads = std::max(max_threads, n);
  // Objects per client thread (so concurrent batches never share one),
  // each thread moving its own set back and forth between the regions.
  std::vector<v1::MigrateBatchRequest> there(max_threads), back(max_threads);
  MemoryManager::CreateRequest create;
  create.size = 4096;
  create.placements = {"smem", "lmem"};
  for (int t = 0; t < max_threads; ++t) {
    for (int i = 0; i < batch; ++i) {
      absl::StatusOr<MemoryManager::CreateResult> c =
          mm->CreateObject(Me(), create);
      if (!c.ok()) Die(c.status().ToString());
      const std::string h = absl::StrCat("obj-", c->object_id);
      there[t].add_entries()->set_handle(h);
      back[t].add_entries()->set_handle(h);
    }
    there[t].set_region("lmem");
    back[t].set_region("smem");
  }
  std::vector<char> in_lmem(max_threads, 0);  // one per thread, no sharing

  SyncDaemon sync_daemon;
  SyncObjects sync_objects(mm.get());
  CallbackDaemon cb_daemon;
  CallbackObjects cb_objects(mm.get());
  const std::string sync_sock = dir + "/sync.sock";
  const std::string cb_sock = dir + "/callback.sock";
  std::unique_ptr<grpc::Server> sync_server =
      Serve(sync_sock, {&sync_daemon, &sync_objects});
  std::unique_ptr<grpc::Server> cb_server =
      Serve(cb_sock, {&cb_daemon, &cb_objects});

  auto ping = [](const std::shared_ptr<grpc::Channel>& ch, int) {
    thread_local std::unique_ptr<v1::DaemonService::Stub> stub;
    thread_local grpc::Channel* stub_channel = nullptr;
    if (stub_channel != ch.get()) {
      stub = v1::DaemonService::NewStub(ch);
      stub_channel = ch.get();
    }
    grpc::ClientContext ctx;
    v1::PingRequest req;
    v1::PingResponse resp;
    grpc::Status s = stub->Ping(&ctx, req, &resp);
    if (!s.ok()) Die("Ping: " + s.error_message());
  };
  auto migrate = [&](const std::shared_ptr<grpc::Channel>& ch, int t) {
    thread_local std::unique_ptr<v1::ObjectService::Stub> stub;
    thread_local grpc::Channel* stub_channel = nullptr;
    if (stub_channel != ch.get()) {
      stub = v1::ObjectService::NewStub(ch);
      stub_channel = ch.get();
    }
    grpc::ClientContext ctx;
    v1::BatchResponse resp;
    grpc::Status s =
        stub->MigrateBatch(&ctx, in_lmem[t] ? back[t] : there[t], &resp);
    if (!s.ok()) Die("MigrateBatch: " + s.error_message());
    if (resp.succeeded() != static_cast<uint32_t>(batch)) {
      Die(absl::StrCat("MigrateBatch: ", resp.failed(), " entries failed"));
    }
    in_lmem[t] = !in_lmem[t];
  };

  // Each (server, rpc, threads) row --repetitions times, the two servers
  // alternating, so a load change on a shared machine hits both alike; the
  // median of each row is reported.
  const int reps = std::max(1, absl::GetFlag(FLAGS_repetitions));
  std::vector<Row> rows;
  for (int threads : thread_counts) {
    const std::string batch_rpc = absl::StrCat("migrate_batch_", batch);
    std::vector<double> runs[2][2];  // [server][rpc]
    for (int rep = 0; rep < reps; ++rep) {
      for (int server = 0; server < 2; ++server) {
        const std::string& sock = server == 0 ? sync_sock : cb_sock;
        runs[server][0].push_back(Drive(sock, threads, ping));
        runs[server][1].push_back(batch * Drive(sock, threads, migrate));
      }
    }
    for (int server = 0; server < 2; ++server) {
      for (int rpc = 0; rpc < 2; ++rpc) {
        std::vector<double>& v = runs[server][rpc];
        std::sort(v.begin(), v.end());
        rows.push_back({server == 0 ? "sync" : "callback",
                        rpc == 0 ? "ping" : batch_rpc, threads,
                        v[v.size() / 2]});
      }
    }
  }
  sync_server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  cb_server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  unlink(sync_sock.c_str());
  unlink(cb_sock.c_str());
  rmdir(dir.c_str());

  std::string out = "{\"bench\": \"callback_bench\", \"rows\": [";
  for (size_t i = 0; i < rows.size(); ++i) {
    absl::StrAppendFormat(
        &out,
        "%s\n  {\"server\": \"%s\", \"rpc\": \"%s\", \"threads\": %d, "
        "\"ops_per_s\": %.0f}",
        i == 0 ? "" : ",", rows[i].server, rows[i].rpc, rows[i].threads,
        rows[i].ops_per_s);
  }
  out += "],\n \"ratios\": {";
  bool first = true;
  for (const Row& s : rows) {
    if (s.server != "sync") continue;
    for (const Row& c : rows) {
      if (c.server != "callback" || c.rpc != s.rpc || c.threads != s.threads) {
        continue;
      }
      absl::StrAppendFormat(&out, "%s\"callback_over_sync_%s_t%d\": %.3f",
                            first ? "" : ", ", s.rpc, s.threads,
                            c.ops_per_s / s.ops_per_s);
      first = false;
    }
  }
  out += "},\n \"decision_threshold_empty_rpc\": 1.3}\n";
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace
}  // namespace gpumig

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return gpumig::Main();
}
