// gpumig_load: a mixed-workload load generator for a running gpumigd.
//
//   gpumig_load --socket=/run/gpumig/gpumig.sock [--processes=4]
//       [--threads=4] [--seconds=10] [--seed=0] [--out=FILE]
//
// Forks --processes client processes (before any gRPC state exists), each
// running --threads worker threads with a Client (own channel) each, plus one
// Watch thread (--watch). Every worker owns up to --max_objects objects of
// random size in [--min_object_bytes, --max_object_bytes] (placements lmem,
// smem) and, until the common deadline, picks one operation at a time:
//
//   Ping, Create, Destroy, Get, List, Write (whole object, a fresh pattern),
//   Read (whole object, checked against the last pattern written: a new
//   object reads as zeros), Migrate (to the other region; half of them with
//   wait), WaitFence (the object's last known fence).
//
// With no faults injected every fence is expected to end BLIT_OK; any other
// outcome, any RPC error (WaitFence's NOT_FOUND for a fence that aged out of
// the history excepted) and any content mismatch is counted. The Watch thread
// opens and closes Watch streams back to back (closed by deadline or after a
// few events). At the deadline each worker destroys its objects (untimed).
//
// Prints one JSON object (stdout, or --out):
//   {"processes": N, "threads_per_process": K, "seconds": S, "seed": X,
//    "ops": O, "ops_per_s": R, "errors": E, "mismatches": M,
//    "unexpected_outcomes": U, "fences_aged_out": A,
//    "watch": {"streams": .., "events": .., "dropped_events": ..,
//              "errors": ..},
//    "rpcs": [{"rpc": "Create", "count": .., "errors": .., "ops_per_s": ..,
//              "p50_us": .., "p99_us": .., "max_us": ..
//              [, "first_error": ".."]}, ...]}
// Latencies are client-side, per RPC, from a log-linear histogram (16
// sub-buckets per power of two: within ~6%), merged over every process.
//
// --touch_regions first fills every region with objects (and destroys them),
// so the daemon's region memory is resident before anyone samples its RSS.
//
// Exit status: 0 when nothing above was counted; 1 otherwise (or when a
// process failed or missed the deadline by more than --grace_seconds); 2 for
// a bad command line.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/gpumig_client.h"
#include "common/json.h"

ABSL_FLAG(std::string, socket, "",
          "gpumigd's unix socket (default: "
          "$GPUMIG_SOCKET or /run/gpumig/gpumig.sock)");
ABSL_FLAG(int, processes, 4, "client processes");
ABSL_FLAG(int, threads, 4, "worker threads per process");
ABSL_FLAG(double, seconds, 10, "how long the load runs");
ABSL_FLAG(int, max_objects, 8, "objects one worker owns at most");
ABSL_FLAG(uint64_t, min_object_bytes, 4096, "smallest object (x 4096)");
ABSL_FLAG(uint64_t, max_object_bytes, 256 << 10, "largest object (x 4096)");
ABSL_FLAG(bool, watch, true, "one Watch open/close thread per process");
ABSL_FLAG(uint64_t, seed, 0, "workload seed; 0: picked from the clock");
ABSL_FLAG(bool, touch_regions, false,
          "first fill every region once (makes region memory resident)");
ABSL_FLAG(double, grace_seconds, 30,
          "how long past the deadline processes may take to report");
ABSL_FLAG(std::string, out, "", "write the JSON here instead of stdout");

namespace gpumig {
namespace {

namespace gc = ::gpumig::client;

constexpr uint64_t kPage = 4096;
constexpr absl::Duration kRpcTimeout = absl::Seconds(20);
constexpr absl::Duration kFenceWait = absl::Seconds(10);

enum Rpc : int {
  kPing,
  kCreate,
  kDestroy,
  kGet,
  kList,
  kWrite,
  kRead,
  kMigrate,
  kWaitFence,
  kWatch,
  kNumRpcs,
};
constexpr const char* kRpcNames[kNumRpcs] = {
    "Ping",  "Create", "Destroy", "Get",       "List",
    "Write", "Read",   "Migrate", "WaitFence", "Watch",
};

// Log-linear latency histogram over microseconds: values below 16 exactly,
// then 16 sub-buckets per power of two. Mergeable by adding counts.
constexpr int kSub = 16;
constexpr int kBuckets = kSub + 40 * kSub;

int BucketOf(uint64_t us) {
  if (us < kSub) return static_cast<int>(us);
  const int e = 63 - __builtin_clzll(us);  // >= 4
  const int sub = static_cast<int>((us >> (e - 4)) & (kSub - 1));
  return std::min(kBuckets - 1, kSub + (e - 4) * kSub + sub);
}

// The middle of bucket `b`.
double BucketValue(int b) {
  if (b < kSub) return b;
  const int e = (b - kSub) / kSub + 4;
  const int sub = (b - kSub) % kSub;
  const double lo = std::ldexp(static_cast<double>(kSub + sub), e - 4);
  const double width = std::ldexp(1.0, e - 4);
  return lo + width / 2;
}

constexpr size_t kErrorText = 240;

// What one process reports to the parent, as raw bytes over a pipe (same
// binary on both ends).
struct Report {
  uint64_t count[kNumRpcs] = {};
  uint64_t errors[kNumRpcs] = {};
  uint64_t max_us[kNumRpcs] = {};
  uint64_t hist[kNumRpcs][kBuckets] = {};
  char first_error[kNumRpcs][kErrorText] = {};
  uint64_t mismatches = 0;
  uint64_t unexpected_outcomes = 0;
  uint64_t fences_aged_out = 0;
  uint64_t watch_events = 0;
  uint64_t watch_dropped = 0;
  char unexpected_text[kErrorText] = {};
  char mismatch_text[kErrorText] = {};

  void Merge(const Report& o) {
    for (int r = 0; r < kNumRpcs; ++r) {
      count[r] += o.count[r];
      errors[r] += o.errors[r];
      max_us[r] = std::max(max_us[r], o.max_us[r]);
      for (int b = 0; b < kBuckets; ++b) hist[r][b] += o.hist[r][b];
      if (first_error[r][0] == '\0') {
        std::memcpy(first_error[r], o.first_error[r], kErrorText);
      }
    }
    mismatches += o.mismatches;
    unexpected_outcomes += o.unexpected_outcomes;
    fences_aged_out += o.fences_aged_out;
    watch_events += o.watch_events;
    watch_dropped += o.watch_dropped;
    if (unexpected_text[0] == '\0') {
      std::memcpy(unexpected_text, o.unexpected_text, kErrorText);
    }
    if (mismatch_text[0] == '\0') {
      std::memcpy(mismatch_text, o.mismatch_text, kErrorText);
    }
  }

  double Percentile(int r, double p) const {
    if (count[r] == 0) return 0;
    const uint64_t rank = static_cast<uint64_t>(p * (count[r] - 1)) + 1;
    uint64_t seen = 0;
    for (int b = 0; b < kBuckets; ++b) {
      seen += hist[r][b];
      if (seen >= rank) return BucketValue(b);
    }
    return BucketValue(kBuckets - 1);
  }
};

void CopyText(char (&dst)[kErrorText], const std::string& s) {
  if (dst[0] != '\0') return;
  std::snprintf(dst, kErrorText, "%s", s.c_str());
}

// The per-process tally: workers record under a mutex (cheap next to an RPC).
class Tally {
 public:
  void Record(Rpc rpc, absl::Duration latency, const absl::Status& status) {
    const uint64_t us = static_cast<uint64_t>(
        std::max<int64_t>(0, absl::ToInt64Microseconds(latency)));
    absl::MutexLock lock(&mu_);
    ++report_.count[rpc];
    if (!status.ok()) {
      ++report_.errors[rpc];
      CopyText(report_.first_error[rpc], status.ToString());
      return;
    }
    ++report_.hist[rpc][BucketOf(us)];
    report_.max_us[rpc] = std::max(report_.max_us[rpc], us);
  }
  void Mismatch(const std::string& what) {
    absl::MutexLock lock(&mu_);
    ++report_.mismatches;
    CopyText(report_.mismatch_text, what);
  }
  void Unexpected(const std::string& what) {
    absl::MutexLock lock(&mu_);
    ++report_.unexpected_outcomes;
    CopyText(report_.unexpected_text, what);
  }
  void AgedOut() {
    absl::MutexLock lock(&mu_);
    ++report_.fences_aged_out;
  }
  void WatchEvents(uint64_t events, uint64_t dropped) {
    absl::MutexLock lock(&mu_);
    report_.watch_events += events;
    report_.watch_dropped += dropped;
  }
  Report Take() {
    absl::MutexLock lock(&mu_);
    return report_;
  }

 private:
  absl::Mutex mu_;
  Report report_ ABSL_GUARDED_BY(mu_);
};

// Content of a write with pattern `seed` (0: zeros, a new object).
void FillPattern(uint32_t seed, uint64_t size, std::vector<uint8_t>* out) {
  out->resize(size);
  if (seed == 0) {
    std::fill(out->begin(), out->end(), 0);
    return;
  }
  uint32_t x = seed;
  for (uint64_t i = 0; i < size; ++i) {
    x = x * 1103515245u + 12345u;
    (*out)[i] = static_cast<uint8_t>((x >> 16) | 1);
  }
}

struct Obj {
  std::string handle;
  uint64_t size = 0;
  uint32_t seed = 0;  // pattern last written; 0: zeros
  std::string region;
  uint64_t last_fence = 0;
};

absl::StatusOr<std::unique_ptr<gc::Client>> NewClient() {
  gc::ConnectOptions options;
  options.unix_socket = absl::GetFlag(FLAGS_socket);
  options.default_timeout = kRpcTimeout;
  return gc::Client::Connect(options);
}

const char* OtherRegion(const std::string& region) {
  return region == "lmem" ? "smem" : "lmem";
}

// One worker thread: the mixed workload until `end`.
class Worker {
 public:
  Worker(gc::Client* client, Tally* tally, uint64_t seed, absl::Time end)
      : client_(client), tally_(tally), rng_(seed), end_(end) {}

  void Run() {
    while (absl::Now() < end_) Step();
    for (const Obj& o : objects_) (void)client_->DestroyObject(o.handle);
    objects_.clear();
  }

 private:
  // Times `fn` (returning a Status or StatusOr) as one `rpc`.
  template <typename Fn>
  auto Timed(Rpc rpc, Fn fn) {
    const absl::Time t0 = absl::Now();
    auto result = fn();
    const absl::Duration latency = absl::Now() - t0;
    if constexpr (std::is_same_v<decltype(result), absl::Status>) {
      tally_->Record(rpc, latency, result);
    } else {
      tally_->Record(rpc, latency, result.status());
    }
    return result;
  }

  void CheckFence(const gc::FenceStatus& f, const char* what) {
    if (f.signaled() && f.outcome != gc::FenceOutcome::kBlitOk) {
      tally_->Unexpected(absl::StrCat(
          what, ": fence ", f.fence_id, " ", gc::FenceKindName(f.kind), " ",
          gc::FenceOutcomeName(f.outcome), " ", f.error.ToString()));
    }
  }

  Obj& Pick() {
    return objects_[std::uniform_int_distribution<size_t>(
        0, objects_.size() - 1)(rng_)];
  }

  void Step() {
    const int max_objects = absl::GetFlag(FLAGS_max_objects);
    int dice = std::uniform_int_distribution<int>(0, 99)(rng_);
    if (objects_.empty()) dice = 10;  // Create.
    if (dice < 8) {
      (void)Timed(kPing, [&] { return client_->Ping(); });
    } else if (dice < 20) {
      if (static_cast<int>(objects_.size()) >= max_objects) {
        Destroy();
      } else {
        Create();
      }
    } else if (dice < 30) {
      Destroy();
    } else if (dice < 42) {
      Obj& o = Pick();
      absl::StatusOr<gc::ObjectInfo> info =
          Timed(kGet, [&] { return client_->GetObject(o.handle); });
      if (info.ok()) {
        o.region = info->region;
        if (info->state != gc::ObjectState::kOk) {
          tally_->Unexpected(absl::StrCat(o.handle, " in state ",
                                          gc::ObjectStateName(info->state)));
        }
      }
    } else if (dice < 46) {
      (void)Timed(kList, [&] { return client_->ListObjects(); });
    } else if (dice < 60) {
      Obj& o = Pick();
      const uint32_t seed = static_cast<uint32_t>(rng_()) | 1;
      FillPattern(seed, o.size, &buf_);
      absl::StatusOr<uint64_t> n =
          Timed(kWrite, [&] { return client_->Write(o.handle, buf_); });
      // A failed write may have written a prefix: the content is unknown.
      o.seed = n.ok() ? seed : 0xffffffffu;
    } else if (dice < 76) {
      Read(Pick());
    } else if (dice < 88) {
      Obj& o = Pick();
      const std::string target = OtherRegion(o.region);
      const bool wait = (rng_() & 1) != 0;
      absl::StatusOr<gc::SubmitResult> moved = Timed(
          kMigrate, [&] { return client_->Migrate(o.handle, target, wait); });
      if (moved.ok()) {
        o.region = target;
        if (moved->fence_id != 0) o.last_fence = moved->fence_id;
        if (moved->fence.has_value()) CheckFence(*moved->fence, "Migrate");
      }
    } else {
      Obj& o = Pick();
      if (o.last_fence == 0) return;
      absl::StatusOr<gc::FenceStatus> f =
          Timed(kWaitFence, [&]() -> absl::StatusOr<gc::FenceStatus> {
            absl::StatusOr<gc::FenceStatus> r =
                client_->WaitFence(o.last_fence, kFenceWait);
            // Aged out of the history: not an error (docs/api.md).
            if (absl::IsNotFound(r.status())) {
              tally_->AgedOut();
              return gc::FenceStatus{};
            }
            return r;
          });
      if (f.ok()) CheckFence(*f, "WaitFence");
    }
  }

  void Create() {
    const uint64_t lo = absl::GetFlag(FLAGS_min_object_bytes) / kPage;
    const uint64_t hi = absl::GetFlag(FLAGS_max_object_bytes) / kPage;
    gc::CreateObjectOptions options;
    options.size_bytes =
        std::uniform_int_distribution<uint64_t>(lo, hi)(rng_) * kPage;
    options.placements = {"lmem", "smem"};
    options.label = "gpumig_load";
    absl::StatusOr<gc::CreateObjectResult> created =
        Timed(kCreate, [&] { return client_->CreateObject(options); });
    if (!created.ok()) return;
    Obj o;
    o.handle = created->object.handle;
    o.size = created->object.size_bytes;
    o.region = created->object.region;
    o.last_fence = created->fence_id;
    objects_.push_back(std::move(o));
  }

  void Destroy() {
    if (objects_.empty()) return;
    const size_t i =
        std::uniform_int_distribution<size_t>(0, objects_.size() - 1)(rng_);
    const std::string handle = objects_[i].handle;
    objects_[i] = std::move(objects_.back());
    objects_.pop_back();
    (void)Timed(kDestroy, [&] { return client_->DestroyObject(handle); });
  }

  void Read(const Obj& o) {
    std::string got;
    got.reserve(o.size);
    absl::StatusOr<uint64_t> n = Timed(kRead, [&] {
      return client_->ReadChunks(
          o.handle, 0, 0, [&](absl::Span<const uint8_t> chunk) {
            got.append(reinterpret_cast<const char*>(chunk.data()),
                       chunk.size());
            return absl::OkStatus();
          });
    });
    if (!n.ok() || o.seed == 0xffffffffu) return;
    FillPattern(o.seed, o.size, &buf_);
    if (got.size() != o.size ||
        std::memcmp(got.data(), buf_.data(), o.size) != 0) {
      size_t at = 0;
      while (at < std::min<size_t>(got.size(), o.size) &&
             static_cast<uint8_t>(got[at]) == buf_[at]) {
        ++at;
      }
      tally_->Mismatch(absl::StrCat(o.handle, " (", o.size,
                                    " bytes): read back ", got.size(),
                                    " bytes, first difference at ", at));
    }
  }

  gc::Client* const client_;
  Tally* const tally_;
  std::mt19937_64 rng_;
  const absl::Time end_;
  std::vector<Obj> objects_;
  std::vector<uint8_t> buf_;
};

// Opens and closes Watch streams until `end`.
void WatchLoop(gc::Client* client, Tally* tally, uint64_t seed,
               absl::Time end) {
  std::mt19937_64 rng(seed);
  while (absl::Now() < end) {
    gc::CallOptions call;
    call.timeout =
        absl::Milliseconds(std::uniform_int_distribution<int>(20, 300)(rng));
    const uint64_t stop_after =
        std::uniform_int_distribution<uint64_t>(1, 20)(rng);
    uint64_t events = 0, dropped = 0;
    const absl::Time t0 = absl::Now();
    absl::Status s = client->Watch(
        gc::WatchOptions{},
        [&](const gc::WatchEvent& e) {
          ++events;
          if (e.kind == gc::EventKind::kDropped) dropped += e.dropped_events;
          return events < stop_after;
        },
        nullptr, call);
    if (absl::IsDeadlineExceeded(s)) s = absl::OkStatus();  // Normal end.
    tally->Record(kWatch, absl::Now() - t0, s);
    tally->WatchEvents(events, dropped);
  }
}

// Fills each region with objects placed there only, then destroys them.
int TouchRegions() {
  absl::StatusOr<std::unique_ptr<gc::Client>> client = NewClient();
  if (!client.ok()) {
    std::fprintf(stderr, "gpumig_load: %s\n",
                 client.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<std::vector<gc::RegionInfo>> regions =
      (*client)->ListRegions();
  if (!regions.ok()) {
    std::fprintf(stderr, "gpumig_load: ListRegions: %s\n",
                 regions.status().ToString().c_str());
    return 1;
  }
  for (const gc::RegionInfo& r : *regions) {
    std::vector<std::string> handles;
    uint64_t chunk = std::min<uint64_t>(4 << 20, r.size_bytes);
    while (chunk >= kPage) {
      gc::CreateObjectOptions options;
      options.size_bytes = chunk;
      options.placements = {r.name};
      options.label = "gpumig_load touch";
      absl::StatusOr<gc::CreateObjectResult> created =
          (*client)->CreateObject(options);
      if (!created.ok()) {
        chunk /= 2;  // Full at this size: smaller pieces fill the rest.
        continue;
      }
      handles.push_back(created->object.handle);
      (void)(*client)->WaitFence(created->fence_id, kFenceWait);
    }
    for (const std::string& h : handles) (void)(*client)->DestroyObject(h);
    std::fprintf(stderr, "gpumig_load: touched region %s (%zu objects)\n",
                 r.name.c_str(), handles.size());
  }
  return 0;
}

// A client process: workers and the watcher until `end`; writes its Report
// to `fd`. Never returns.
[[noreturn]] void ChildMain(int index, int fd, uint64_t seed, absl::Time end) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  Tally tally;
  const int threads = absl::GetFlag(FLAGS_threads);
  std::vector<std::unique_ptr<gc::Client>> clients;
  for (int i = 0; i < threads + 1; ++i) {
    absl::StatusOr<std::unique_ptr<gc::Client>> c = NewClient();
    if (!c.ok()) {
      std::fprintf(stderr, "gpumig_load[%d]: %s\n", index,
                   c.status().ToString().c_str());
      _exit(1);
    }
    clients.push_back(*std::move(c));
  }
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&, i] {
      Worker w(clients[i].get(), &tally, seed * 1000003 + index * 1009 + i,
               end);
      w.Run();
    });
  }
  if (absl::GetFlag(FLAGS_watch)) {
    workers.emplace_back([&] {
      WatchLoop(clients[threads].get(), &tally, seed * 7 + index, end);
    });
  }
  for (std::thread& t : workers) t.join();
  const std::unique_ptr<Report> report = std::make_unique<Report>(tally.Take());
  const char* p = reinterpret_cast<const char*>(report.get());
  size_t left = sizeof(Report);
  while (left > 0) {
    const ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(1);
    p += n;
    left -= static_cast<size_t>(n);
  }
  close(fd);
  _exit(0);  // Skip gRPC's teardown: nothing left to flush.
}

int Main() {
  const int processes = absl::GetFlag(FLAGS_processes);
  const int threads = absl::GetFlag(FLAGS_threads);
  const double seconds = absl::GetFlag(FLAGS_seconds);
  const uint64_t min_bytes = absl::GetFlag(FLAGS_min_object_bytes);
  const uint64_t max_bytes = absl::GetFlag(FLAGS_max_object_bytes);
  if (processes < 1 || processes > 256 || threads < 1 || threads > 256 ||
      !(seconds > 0) || seconds > 3600 || min_bytes == 0 ||
      min_bytes % kPage != 0 || max_bytes % kPage != 0 ||
      max_bytes < min_bytes || absl::GetFlag(FLAGS_max_objects) < 1) {
    std::fprintf(stderr,
                 "gpumig_load: bad flags (processes/threads 1..256, seconds "
                 "in (0, 3600], object sizes multiples of 4096, min <= max)\n");
    return 2;
  }
  uint64_t seed = absl::GetFlag(FLAGS_seed);
  if (seed == 0) seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  std::fprintf(stderr,
               "gpumig_load: %d processes x %d threads, %.1f s, seed %llu "
               "(replay with --seed=%llu)\n",
               processes, threads, seconds,
               static_cast<unsigned long long>(seed),
               static_cast<unsigned long long>(seed));

  // No gRPC in this process: every client lives in a child.
  if (absl::GetFlag(FLAGS_touch_regions)) {
    const pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) _exit(TouchRegions());
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  }

  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(seconds);
  struct Child {
    pid_t pid = -1;
    int fd = -1;
    std::unique_ptr<Report> report = std::make_unique<Report>();
    size_t got = 0;
  };
  std::vector<Child> children(processes);
  for (int i = 0; i < processes; ++i) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return 1;
    const pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
      close(p[0]);
      ChildMain(i, p[1], seed, end);
    }
    close(p[1]);
    children[i].pid = pid;
    children[i].fd = p[0];
  }

  // Read every report (concurrently: a child may block on a full pipe).
  const absl::Time limit =
      end + absl::Seconds(absl::GetFlag(FLAGS_grace_seconds));
  bool failed = false;
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<Child*> owners;
    for (Child& c : children) {
      if (c.fd < 0) continue;
      fds.push_back({c.fd, POLLIN, 0});
      owners.push_back(&c);
    }
    if (fds.empty()) break;
    const int64_t ms = absl::ToInt64Milliseconds(limit - absl::Now());
    if (ms <= 0) {
      std::fprintf(stderr, "gpumig_load: %zu processes missed the deadline\n",
                   fds.size());
      failed = true;
      for (Child* c : owners) {
        kill(c->pid, SIGKILL);
        close(c->fd);
        c->fd = -1;
      }
      break;
    }
    const int ready = poll(fds.data(), fds.size(), static_cast<int>(ms));
    if (ready < 0 && errno != EINTR) return 1;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      Child& c = *owners[i];
      char* dst = reinterpret_cast<char*>(c.report.get()) + c.got;
      const ssize_t n = read(c.fd, dst, sizeof(Report) - c.got);
      if (n > 0) {
        c.got += static_cast<size_t>(n);
      } else if (n == 0 || errno != EINTR) {
        close(c.fd);
        c.fd = -1;
      }
    }
  }
  Report total;
  for (int i = 0; i < processes; ++i) {
    int status = 0;
    waitpid(children[i].pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        children[i].got != sizeof(Report)) {
      std::fprintf(stderr,
                   "gpumig_load: process %d failed (status 0x%x, %zu of %zu "
                   "report bytes)\n",
                   i, status, children[i].got, sizeof(Report));
      failed = true;
      continue;
    }
    total.Merge(*children[i].report);
  }
  const double elapsed = std::max(1e-9, seconds);

  uint64_t ops = 0, errors = 0;
  std::string rows;
  for (int r = 0; r < kNumRpcs; ++r) {
    ops += total.count[r];
    errors += total.errors[r];
    absl::StrAppendFormat(
        &rows,
        "%s    {\"rpc\": \"%s\", \"count\": %d, \"errors\": %d, "
        "\"ops_per_s\": %.1f, \"p50_us\": %.0f, \"p99_us\": %.0f, "
        "\"max_us\": %d",
        r == 0 ? "" : ",\n", kRpcNames[r], total.count[r], total.errors[r],
        total.count[r] / elapsed, total.Percentile(r, 0.50),
        total.Percentile(r, 0.99), total.max_us[r]);
    if (total.first_error[r][0] != '\0') {
      absl::StrAppend(&rows, ", \"first_error\": \"",
                      JsonEscape(total.first_error[r]), "\"");
    }
    absl::StrAppend(&rows, "}");
  }
  std::string json = absl::StrFormat(
      "{\"processes\": %d, \"threads_per_process\": %d, \"seconds\": %.1f, "
      "\"seed\": %d,\n  \"ops\": %d, \"ops_per_s\": %.1f, \"errors\": %d, "
      "\"mismatches\": %d, \"unexpected_outcomes\": %d, "
      "\"fences_aged_out\": %d,\n  \"watch\": {\"streams\": %d, "
      "\"events\": %d, \"dropped_events\": %d, \"errors\": %d},\n",
      processes, threads, seconds, seed, ops, ops / elapsed, errors,
      total.mismatches, total.unexpected_outcomes, total.fences_aged_out,
      total.count[kWatch], total.watch_events, total.watch_dropped,
      total.errors[kWatch]);
  if (total.mismatch_text[0] != '\0') {
    absl::StrAppend(&json, "  \"first_mismatch\": \"",
                    JsonEscape(total.mismatch_text), "\",\n");
  }
  if (total.unexpected_text[0] != '\0') {
    absl::StrAppend(&json, "  \"first_unexpected\": \"",
                    JsonEscape(total.unexpected_text), "\",\n");
  }
  absl::StrAppend(&json, "  \"rpcs\": [\n", rows, "\n  ]\n}\n");

  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) {
    std::fputs(json.c_str(), stdout);
    std::fflush(stdout);
  } else {
    FILE* f = std::fopen(out.c_str(), "w");
    if (f == nullptr) {
      std::fprintf(stderr, "gpumig_load: cannot write %s: %s\n", out.c_str(),
                   strerror(errno));
      return 1;
    }
    std::fputs(json.c_str(), f);
    std::fclose(f);
  }
  if (errors > 0 || total.mismatches > 0 || total.unexpected_outcomes > 0) {
    std::fprintf(stderr,
                 "gpumig_load: FAILED: %llu errors, %llu mismatches, %llu "
                 "unexpected outcomes\n",
                 static_cast<unsigned long long>(errors),
                 static_cast<unsigned long long>(total.mismatches),
                 static_cast<unsigned long long>(total.unexpected_outcomes));
    failed = true;
  }
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace gpumig

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  return gpumig::Main();
}
