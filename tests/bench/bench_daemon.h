// BenchDaemon: a gpumigd child process for the benchmarks that measure the
// daemon end to end (rpc_bench, shm_bench): found in the runfiles (or named),
// started on a unix socket in a fresh temp dir with the bench's config,
// waited for (bounded), stopped with SIGTERM (bounded; SIGKILL after that);
// and the row figures and helpers both benches share.
//
// Thread-safety: not thread-safe; one owner.
#ifndef GPUMIG_TESTS_BENCH_BENCH_DAEMON_H_
#define GPUMIG_TESTS_BENCH_BENCH_DAEMON_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gpumig {
namespace bench {

// The whole file, or "" if it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

// The gpumigd to run: `explicit_path` if non-empty, else $GPUMIGD, else
// //daemon:gpumigd in the runfiles ($RUNFILES_DIR, $TEST_SRCDIR,
// <argv0>.runfiles, /proc/self/exe.runfiles). "" if none is executable.
std::string FindDaemon(const char* argv0, const std::string& explicit_path);

// User + system CPU seconds of process `pid` so far (/proc/PID/stat), 0 if
// unreadable; and of this process (getrusage).
double ProcessCpuSeconds(pid_t pid);
double SelfCpuSeconds();

// What one measuring thread of a bench row counts.
struct ThreadResult {
  uint64_t ops = 0;
  uint64_t errors = 0;
  uint64_t mismatches = 0;
  std::string first_error;
  absl::Duration elapsed;
  std::vector<double> latencies_us;
  // Counts a failed op; keeps the first error's text.
  void Fail(const absl::Status& s) {
    if (errors++ == 0) first_error = s.ToString();
  }
};

// The figures every row of rpc_bench and shm_bench reports.
struct RowFigures {
  double ops_per_s = 0;
  double gbps = 0;
  double p50_us = 0;
  double p99_us = 0;
  double daemon_cpu_us_per_op = 0;
  double client_cpu_us_per_op = 0;
  uint64_t errors = 0;
  uint64_t mismatches = 0;
  std::string first_error;
};

// The p-quantile (0..1) of `v` (reordered); 0 if empty.
double Percentile(std::vector<double>& v, double p);

class BenchDaemon {
 public:
  // `keep_log`: keep gpumigd's stderr in this file (""; a temp file, removed).
  explicit BenchDaemon(std::string keep_log = "")
      : keep_log_(std::move(keep_log)) {}
  ~BenchDaemon();  // SIGKILLs a daemon still running; removes the temp dir.
  BenchDaemon(const BenchDaemon&) = delete;
  BenchDaemon& operator=(const BenchDaemon&) = delete;

  std::string socket() const { return dir_ + "/gpumig.sock"; }
  std::string config() const { return dir_ + "/gpumigd.textproto"; }
  std::string log() const;
  pid_t pid() const { return pid_; }

  // Writes `config_text`, starts `binary --config --socket <extra_args>` and
  // waits until a Ping answers (30 s at most). UNAVAILABLE with the log if it
  // exits during start-up; DEADLINE_EXCEEDED if it does not answer.
  absl::Status Start(const std::string& binary, const std::string& config_text,
                     const std::vector<std::string>& extra_args);

  // SIGTERM, then waits (20 s at most) for the exit; SIGKILL if it does not
  // come. The exit status, or -1 if killed or dead by a signal.
  int Stop();

 private:
  const std::string keep_log_;
  std::string dir_;
  pid_t pid_ = -1;
};

}  // namespace bench
}  // namespace gpumig

#endif  // GPUMIG_TESTS_BENCH_BENCH_DAEMON_H_
