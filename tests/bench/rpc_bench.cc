// End-to-end RPC throughput of gpumigd over its unix socket, through the
// client library (//client:gpumig_client), against the cost of an RPC that
// does no work (DaemonService.Ping) on the same daemon in the same run.
//
//   bazel run -c opt //tests/bench:rpc_bench [-- --seconds=2 --threads=1,8]
//
// The bench starts its own gpumigd (//daemon:gpumigd, found in the runfiles
// or given by --gpumigd / $GPUMIGD) on a socket in a fresh temp dir, waits
// for it to answer (bounded), measures, then stops it with SIGTERM and waits
// for its exit (bounded; SIGKILL after that).
//
// Prints one JSON array on stdout; a row per measurement:
//   {"case": "empty_rpc"|"create_destroy"|"write_read", "threads": T,
//    "ops_per_s": X, "gbps": Y, "rpcs_per_op": R, "bytes_per_op": B,
//    "p50_us": P, "p99_us": Q, "errors": E, "mismatches": M,
//    "daemon_cpu_us_per_op": D, "client_cpu_us_per_op": C
//    [, "ratio_to_empty": Z][, "first_error": "..."]}
// One op is:
//   empty_rpc       one Ping;
//   create_destroy  Create of a 4 KiB object (placements lmem, smem) and
//                   Destroy of it: two RPCs;
//   write_read      Write of a whole 64 MiB object (streamed in 1 MiB chunks)
//                   and Read of it back into client memory.
// gbps is bytes moved between client and daemon per second / 1e9 (0 for
// empty_rpc and create_destroy). ratio_to_empty (create_destroy only) is
// ops_per_s over the empty_rpc ops_per_s at the same thread count: 0.5 means
// a Create+Destroy pair costs as much as two Pings. Latencies are per op.
// daemon_cpu_us_per_op / client_cpu_us_per_op: CPU time (user + system) the
// daemon process / this process spent per op during the row; unlike the
// rates they hardly depend on what else the machine is running.
//
// Each client thread has its own Client (its own channel) and runs ops back
// to back for --seconds after a short warm-up; all threads start together.
// Progress and the daemon's log (on failure) go to stderr. Exit status: 0;
// 1 if the daemon cannot be started, any op failed, content read back
// differs from what was written, or the daemon did not exit 0 on SIGTERM.
#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/barrier.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/gpumig_client.h"
#include "common/json.h"
#include "tests/bench/bench_daemon.h"

ABSL_FLAG(double, seconds, 2.0, "measuring time per row, in seconds");
ABSL_FLAG(std::string, threads, "1,8", "client thread counts, comma-separated");
ABSL_FLAG(std::string, cases, "empty_rpc,create_destroy,write_read",
          "cases to run, comma-separated (ratio_to_empty needs empty_rpc); "
          "diagnostics: get_object, create_only");
ABSL_FLAG(std::string, gpumigd, "",
          "gpumigd binary (default: $GPUMIGD, else //daemon:gpumigd from the "
          "runfiles)");
ABSL_FLAG(std::string, daemon_log, "",
          "keep gpumigd's log (stderr) in this file (default: a temp file, "
          "removed; with --daemon_flags=--log_level=debug it times every "
          "RPC inside the daemon)");
ABSL_FLAG(std::string, daemon_flags, "",
          "extra gpumigd flags, space-separated (e.g. --log_level=warn)");

namespace gpumig {
namespace {

namespace gc = ::gpumig::client;

constexpr uint64_t kSmallObject = 4096;
constexpr uint64_t kLargeObject = 64ull << 20;
constexpr absl::Duration kWarmUp = absl::Milliseconds(200);

// The daemon's regions: every thread of write_read holds a 64 MiB object in
// smem, so smem has room for 8 of them and more.
constexpr char kConfig[] =
    "backend: \"sim\"\n"
    "regions { name: \"lmem\" kind: LMEM size: \"256MiB\" aperture: \"64MiB\" "
    "}\n"
    "regions { name: \"smem\" kind: SMEM size: \"1GiB\" }\n"
    "log_level: \"warn\"\n";

using bench::ThreadResult;

struct Row : bench::RowFigures {
  std::string name;
  int threads = 0;
  int rpcs_per_op = 0;
  uint64_t bytes_per_op = 0;
};

// One benchmark case: per-thread state set up outside the timed loop.
class Case {
 public:
  virtual ~Case() = default;
  virtual const char* name() const = 0;
  virtual int rpcs_per_op() const = 0;
  virtual uint64_t bytes_per_op() const = 0;
  // Once per thread before timing (not timed).
  virtual absl::Status SetUp(gc::Client& /*client*/) {
    return absl::OkStatus();
  }
  // One op. A content mismatch is reported by setting *mismatch.
  virtual absl::Status Op(gc::Client& client, bool* mismatch) = 0;
  // Once per thread after timing (not timed).
  virtual void TearDown(gc::Client& /*client*/) {}
};

class EmptyRpc : public Case {
 public:
  const char* name() const override { return "empty_rpc"; }
  int rpcs_per_op() const override { return 1; }
  uint64_t bytes_per_op() const override { return 0; }
  absl::Status Op(gc::Client& client, bool*) override { return client.Ping(); }
};

class CreateDestroy : public Case {
 public:
  const char* name() const override { return "create_destroy"; }
  int rpcs_per_op() const override { return 2; }
  uint64_t bytes_per_op() const override { return 0; }
  absl::Status Op(gc::Client& client, bool*) override {
    gc::CreateObjectOptions options;
    options.size_bytes = kSmallObject;
    options.placements = {"lmem", "smem"};
    absl::StatusOr<gc::CreateObjectResult> created =
        client.CreateObject(options);
    if (!created.ok()) return created.status();
    return client.DestroyObject(created->object.handle);
  }
};

// Diagnostics (not in the default --cases): where Create+Destroy's cost goes.
// get_object: Get of an existing 4 KiB object (a manager lookup and an
// Object in the reply, no work submitted).
class GetObject : public Case {
 public:
  const char* name() const override { return "get_object"; }
  int rpcs_per_op() const override { return 1; }
  uint64_t bytes_per_op() const override { return 0; }
  absl::Status SetUp(gc::Client& client) override {
    gc::CreateObjectOptions options;
    options.size_bytes = kSmallObject;
    options.placements = {"lmem", "smem"};
    absl::StatusOr<gc::CreateObjectResult> created =
        client.CreateObject(options);
    if (!created.ok()) return created.status();
    handle_ = created->object.handle;
    return absl::OkStatus();
  }
  absl::Status Op(gc::Client& client, bool*) override {
    return client.GetObject(handle_).status();
  }
  void TearDown(gc::Client& client) override {
    if (!handle_.empty()) (void)client.DestroyObject(handle_);
  }

 private:
  std::string handle_;
};

// create_only: Create of a 4 KiB object (destroyed after the row, untimed).
class CreateOnly : public Case {
 public:
  const char* name() const override { return "create_only"; }
  int rpcs_per_op() const override { return 1; }
  uint64_t bytes_per_op() const override { return 0; }
  absl::Status Op(gc::Client& client, bool*) override {
    gc::CreateObjectOptions options;
    options.size_bytes = kSmallObject;
    options.placements = {"lmem", "smem"};
    absl::StatusOr<gc::CreateObjectResult> created =
        client.CreateObject(options);
    if (!created.ok()) return created.status();
    handles_.push_back(created->object.handle);
    return absl::OkStatus();
  }
  void TearDown(gc::Client& client) override {
    for (const std::string& h : handles_) (void)client.DestroyObject(h);
  }

 private:
  std::vector<std::string> handles_;
};

class WriteRead : public Case {
 public:
  const char* name() const override { return "write_read"; }
  int rpcs_per_op() const override { return 2; }
  uint64_t bytes_per_op() const override { return 2 * kLargeObject; }

  absl::Status SetUp(gc::Client& client) override {
    data_.resize(kLargeObject);
    uint32_t x = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(this));
    for (uint8_t& b : data_) {
      x = x * 1103515245u + 12345u;
      b = static_cast<uint8_t>(x >> 16);
    }
    back_.assign(kLargeObject, 0);
    gc::CreateObjectOptions options;
    options.size_bytes = kLargeObject;
    options.placements = {"smem"};
    options.label = "rpc_bench";
    absl::StatusOr<gc::CreateObjectResult> created =
        client.CreateObject(options);
    if (!created.ok()) return created.status();
    handle_ = created->object.handle;
    return absl::OkStatus();
  }

  absl::Status Op(gc::Client& client, bool* mismatch) override {
    absl::StatusOr<uint64_t> written = client.Write(handle_, data_);
    if (!written.ok()) return written.status();
    if (*written != kLargeObject) {
      return absl::InternalError(
          absl::StrCat("Write wrote ", *written, " bytes"));
    }
    uint64_t at = 0;
    absl::StatusOr<uint64_t> read = client.ReadChunks(
        handle_, 0, 0, [&](absl::Span<const uint8_t> chunk) -> absl::Status {
          if (chunk.size() > back_.size() - at) {
            return absl::OutOfRangeError("Read returned too many bytes");
          }
          std::memcpy(back_.data() + at, chunk.data(), chunk.size());
          at += chunk.size();
          return absl::OkStatus();
        });
    if (!read.ok()) return read.status();
    if (*read != kLargeObject || back_ != data_) *mismatch = true;
    // Next op writes different bytes, so a stale read cannot pass.
    data_[ops_ % data_.size()] ^= 0x5a;
    ++ops_;
    return absl::OkStatus();
  }

  void TearDown(gc::Client& client) override {
    if (!handle_.empty()) (void)client.DestroyObject(handle_);
  }

 private:
  std::vector<uint8_t> data_;
  std::vector<uint8_t> back_;
  std::string handle_;
  uint64_t ops_ = 0;
};

std::unique_ptr<Case> MakeCase(absl::string_view name) {
  if (name == "empty_rpc") return std::make_unique<EmptyRpc>();
  if (name == "create_destroy") return std::make_unique<CreateDestroy>();
  if (name == "write_read") return std::make_unique<WriteRead>();
  if (name == "get_object") return std::make_unique<GetObject>();
  if (name == "create_only") return std::make_unique<CreateOnly>();
  return nullptr;
}

// Runs `case_name` on `threads` threads, each with its own Client, for
// `duration` after a warm-up.
absl::StatusOr<Row> RunRow(absl::string_view case_name, int threads,
                           const std::string& socket, pid_t daemon_pid,
                           absl::Duration duration) {
  std::vector<std::unique_ptr<gc::Client>> clients;
  std::vector<std::unique_ptr<Case>> cases;
  for (int i = 0; i < threads; ++i) {
    gc::ConnectOptions options;
    options.unix_socket = socket;
    absl::StatusOr<std::unique_ptr<gc::Client>> c =
        gc::Client::Connect(options);
    if (!c.ok()) return c.status();
    clients.push_back(*std::move(c));
    cases.push_back(MakeCase(case_name));
    if (cases.back() == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown case \"", case_name, "\""));
    }
    if (absl::Status s = cases.back()->SetUp(*clients.back()); !s.ok()) {
      return s;
    }
  }
  std::vector<ThreadResult> results(threads);
  // The workers and this thread, which samples CPU time once all are ready.
  absl::Barrier* start = new absl::Barrier(threads + 1);  // Deletes itself.
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&, i] {
      gc::Client& client = *clients[i];
      Case& c = *cases[i];
      ThreadResult& r = results[i];
      // Warm-up: connection set-up, first-touch of pages, caches.
      const absl::Time warm_end = absl::Now() + kWarmUp;
      bool first = true;
      while (first || absl::Now() < warm_end) {
        first = false;
        bool mismatch = false;
        if (absl::Status s = c.Op(client, &mismatch); !s.ok()) {
          r.Fail(s);
          break;
        }
      }
      if (start->Block()) delete start;
      const absl::Time t0 = absl::Now();
      const absl::Time end = t0 + duration;
      absl::Time now = t0;
      while (now < end) {
        bool mismatch = false;
        const absl::Status s = c.Op(client, &mismatch);
        const absl::Time after = absl::Now();
        if (!s.ok()) {
          r.Fail(s);
          if (r.errors > 100) break;  // Do not spin on a dead daemon.
        } else {
          ++r.ops;
          r.latencies_us.push_back(absl::ToDoubleMicroseconds(after - now));
        }
        if (mismatch) ++r.mismatches;
        now = after;
      }
      r.elapsed = now - t0;
    });
  }
  if (start->Block()) delete start;
  const double daemon_cpu0 = bench::ProcessCpuSeconds(daemon_pid);
  const double client_cpu0 = bench::SelfCpuSeconds();
  for (std::thread& t : workers) t.join();
  const double daemon_cpu = bench::ProcessCpuSeconds(daemon_pid) - daemon_cpu0;
  const double client_cpu = bench::SelfCpuSeconds() - client_cpu0;
  for (int i = 0; i < threads; ++i) cases[i]->TearDown(*clients[i]);

  Row row;
  row.name = std::string(case_name);
  row.threads = threads;
  row.rpcs_per_op = cases[0]->rpcs_per_op();
  row.bytes_per_op = cases[0]->bytes_per_op();
  uint64_t ops = 0;
  absl::Duration elapsed;
  std::vector<double> latencies;
  for (ThreadResult& r : results) {
    ops += r.ops;
    elapsed = std::max(elapsed, r.elapsed);
    row.errors += r.errors;
    row.mismatches += r.mismatches;
    if (row.first_error.empty()) row.first_error = r.first_error;
    latencies.insert(latencies.end(), r.latencies_us.begin(),
                     r.latencies_us.end());
  }
  const double seconds = absl::ToDoubleSeconds(elapsed);
  row.ops_per_s = seconds > 0 ? ops / seconds : 0;
  row.gbps = row.ops_per_s * row.bytes_per_op / 1e9;
  if (ops > 0) {
    row.daemon_cpu_us_per_op = daemon_cpu * 1e6 / ops;
    row.client_cpu_us_per_op = client_cpu * 1e6 / ops;
  }
  row.p50_us = bench::Percentile(latencies, 0.50);
  row.p99_us = bench::Percentile(latencies, 0.99);
  return row;
}

int Main(int argc, char** argv) {
  std::vector<int> thread_counts;
  for (absl::string_view t :
       absl::StrSplit(absl::GetFlag(FLAGS_threads), ',', absl::SkipEmpty())) {
    int n = 0;
    if (!absl::SimpleAtoi(t, &n) || n <= 0 || n > 1024) {
      std::fprintf(stderr, "rpc_bench: bad --threads entry \"%s\"\n",
                   std::string(t).c_str());
      return 2;
    }
    thread_counts.push_back(n);
  }
  std::vector<std::string> case_names =
      absl::StrSplit(absl::GetFlag(FLAGS_cases), ',', absl::SkipEmpty());
  for (const std::string& c : case_names) {
    if (MakeCase(c) == nullptr) {
      std::fprintf(stderr, "rpc_bench: unknown case \"%s\"\n", c.c_str());
      return 2;
    }
  }
  const double seconds = absl::GetFlag(FLAGS_seconds);
  if (!(seconds > 0) || seconds > 3600) {
    std::fprintf(stderr, "rpc_bench: --seconds must be in (0, 3600]\n");
    return 2;
  }

  const std::string binary =
      bench::FindDaemon(argv[0], absl::GetFlag(FLAGS_gpumigd));
  if (binary.empty()) {
    std::fprintf(stderr,
                 "rpc_bench: cannot find gpumigd (give --gpumigd=PATH or "
                 "$GPUMIGD, or run under bazel run)\n");
    return 1;
  }
  bench::BenchDaemon daemon(absl::GetFlag(FLAGS_daemon_log));
  std::vector<std::string> extra;
  for (absl::string_view f : absl::StrSplit(absl::GetFlag(FLAGS_daemon_flags),
                                            ' ', absl::SkipEmpty())) {
    extra.emplace_back(f);
  }
  if (absl::Status s = daemon.Start(binary, kConfig, extra); !s.ok()) {
    std::fprintf(stderr, "rpc_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "rpc_bench: gpumigd %s on %s, %.1f s per row\n",
               binary.c_str(), daemon.socket().c_str(), seconds);

  std::vector<Row> rows;
  bool failed = false;
  for (int threads : thread_counts) {
    for (const std::string& c : case_names) {
      absl::StatusOr<Row> row = RunRow(c, threads, daemon.socket(),
                                       daemon.pid(), absl::Seconds(seconds));
      if (!row.ok()) {
        std::fprintf(stderr, "rpc_bench: %s x%d: %s\n", c.c_str(), threads,
                     row.status().ToString().c_str());
        failed = true;
        continue;
      }
      std::fprintf(stderr,
                   "rpc_bench: %-14s threads=%d ops/s=%.0f p50=%.0fus "
                   "p99=%.0fus errors=%llu\n",
                   c.c_str(), threads, row->ops_per_s, row->p50_us, row->p99_us,
                   static_cast<unsigned long long>(row->errors));
      if (row->errors > 0 || row->mismatches > 0) {
        std::fprintf(stderr,
                     "rpc_bench: %s x%d: %llu errors (first: %s), "
                     "%llu content mismatches\n",
                     c.c_str(), threads,
                     static_cast<unsigned long long>(row->errors),
                     row->first_error.c_str(),
                     static_cast<unsigned long long>(row->mismatches));
        failed = true;
      }
      rows.push_back(*std::move(row));
    }
  }

  const int exit_status = daemon.Stop();
  if (exit_status != 0) {
    std::fprintf(stderr,
                 "rpc_bench: gpumigd did not exit 0 on SIGTERM (status %d); "
                 "log:\n%s\n",
                 exit_status, bench::ReadFileOrEmpty(daemon.log()).c_str());
    failed = true;
  } else if (failed) {
    std::fprintf(stderr, "rpc_bench: gpumigd log:\n%s\n",
                 bench::ReadFileOrEmpty(daemon.log()).c_str());
  }

  std::printf("[\n");
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    std::string extra;
    if (r.name == "create_destroy") {
      double empty = 0;
      for (const Row& e : rows) {
        if (e.name == "empty_rpc" && e.threads == r.threads) {
          empty = e.ops_per_s;
        }
      }
      if (empty > 0) {
        extra =
            absl::StrFormat(", \"ratio_to_empty\": %.3f", r.ops_per_s / empty);
      }
    }
    if (!r.first_error.empty()) {
      absl::StrAppend(&extra, ", \"first_error\": \"",
                      JsonEscape(r.first_error), "\"");
    }
    std::printf(
        "  {\"case\": \"%s\", \"threads\": %d, \"ops_per_s\": %.1f, "
        "\"gbps\": %.3f, \"rpcs_per_op\": %d, \"bytes_per_op\": %llu, "
        "\"p50_us\": %.1f, \"p99_us\": %.1f, \"errors\": %llu, "
        "\"mismatches\": %llu, \"daemon_cpu_us_per_op\": %.1f, "
        "\"client_cpu_us_per_op\": %.1f%s}%s\n",
        r.name.c_str(), r.threads, r.ops_per_s, r.gbps, r.rpcs_per_op,
        static_cast<unsigned long long>(r.bytes_per_op), r.p50_us, r.p99_us,
        static_cast<unsigned long long>(r.errors),
        static_cast<unsigned long long>(r.mismatches), r.daemon_cpu_us_per_op,
        r.client_cpu_us_per_op, extra.c_str(), i + 1 < rows.size() ? "," : "");
  }
  std::printf("]\n");
  std::fflush(stdout);
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace gpumig

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  return gpumig::Main(argc, argv);
}
