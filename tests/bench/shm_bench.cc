// Shared buffers against gRPC streams against memcpy, in one run, with the
// client and gpumigd in separate processes (docs/api.md "Shared buffers").
//
//   bazel run -c opt //tests/bench:shm_bench [-- --seconds=1
//       --sizes=4KiB,1MiB,64MiB,1GiB --threads=1,4]
//   bazel run -c opt //tests/bench:shm_bench -- --smoke   (seconds; tiny)
//
// The bench starts its own gpumigd (sim backend; //daemon:gpumigd from the
// runfiles, or --gpumigd / $GPUMIGD) on a unix socket in a fresh temp dir,
// with an SMEM region large enough for one object of the largest size per
// thread, then measures, for every --sizes entry and every --threads count:
//   memcpy            in this process: memcpy a->b then b->a between two
//                     anonymous buffers of the size (pre-faulted): the bytes
//                     a write+read moves, at the machine's speed;
//   stream_write_read Client::Write of the whole object then Client::Read of
//                     it (ReadChunks into client memory) with
//                     use_shared_buffers off: the `--no-shm` path;
//   shm_write_read    WriteFromBuffer then ReadToBuffer of the whole object
//                     through one registered SharedBuffer of the size;
// and, per thread count, the rate of empty RPCs (DaemonService.Ping) and of
// 4 KiB shared-buffer IO RPCs (WriteFromBuffer and ReadToBuffer alternately,
// each one op); and the time to register (REGISTER to its reply: the
// daemon's checks, mmap) and unregister a --registration_size buffer whose
// memfd exists already, plus the client's whole SharedBuffer::Create
// (memfd_create, fallocate, seal, register).
//
// One thread, one Client (own channel), one object, one buffer; all threads
// start together; each runs ops back to back (at least one op each) after
// one warm-up op. Rows compared with each other (empty_rpc and shm_io_4k;
// memcpy, stream and shm of one size) run interleaved in --rounds rounds of
// --seconds / rounds (sizes above 64 MiB: one round of --seconds) and sum
// their rounds, so a change of load on a shared machine hits them alike.
// Content is checked outside the timed loop, on every thread, before and after
// it: a pattern written, the client side zeroed, read back and compared (a
// mismatch fails the run).
//
// Prints one JSON object on stdout:
//   {"rows": [{"case", "size_bytes", "threads", "ops_per_s", "gbps",
//              "bytes_per_op", "p50_us", "p99_us", "errors", "mismatches",
//              "daemon_cpu_us_per_op", "client_cpu_us_per_op"
//              [, "ratio_to_memcpy"][, "ratio_to_empty"][, "first_error"]}],
//    "registration": {"size_bytes", "register_ms_median", "register_ms_max",
//                     "unregister_ms_median", "client_create_ms"},
//    "goals": {"shm_vs_memcpy_min_64MiB_1GiB", "shm_4k_vs_empty_min",
//              "register_ms", "met"}}
// gbps counts bytes moved between client and object (2 x size per op for
// the write_read rows and memcpy). ratio_to_memcpy is the row's gbps over
// the memcpy row's of the same size and threads; ratio_to_empty (shm_io_4k)
// its ops_per_s over empty_rpc's at the same threads. goals: the smallest
// shm ratio at 64 MiB and 1 GiB (goal >= 0.8), the smallest 4 KiB ratio
// (>= 0.8) and the registration median (< 50 ms); "met" says whether all
// three hold (sizes not measured are left out of the minimum).
//
// Exit status: 0; 1 if the daemon cannot be started, an op failed, content
// differed, or the daemon did not exit 0 on SIGTERM; 2 for bad flags. Goals
// missed do not fail the run (they are figures, not tests).
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/barrier.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/gpumig_client.h"
#include "client/shared_buffer.h"
#include "common/json.h"
#include "core/shm/test_registrar.h"
#include "tests/bench/bench_daemon.h"

ABSL_FLAG(double, seconds, 1.0, "measuring time per row, in seconds");
ABSL_FLAG(std::string, sizes, "4KiB,1MiB,64MiB,1GiB",
          "object sizes of the write_read rows (B, KiB, MiB, GiB suffixes; "
          "\"none\": only the 4 KiB RPC rows and the registration)");
ABSL_FLAG(std::string, threads, "1,4", "client thread counts, comma-separated");
ABSL_FLAG(std::string, registration_size, "1GiB",
          "size of the buffer whose registration is timed");
ABSL_FLAG(int, rounds, 3,
          "rounds the compared rows are interleaved in (sizes up to 64 MiB)");
ABSL_FLAG(int, registrations, 5, "timed registrations (median reported)");
ABSL_FLAG(bool, smoke, false,
          "a few seconds in all: sizes 4KiB,1MiB, threads 1,2, 0.05 s rows, "
          "a 4 MiB registration (overrides those flags)");
ABSL_FLAG(std::string, gpumigd, "",
          "gpumigd binary (default: $GPUMIGD, else //daemon:gpumigd from the "
          "runfiles)");
ABSL_FLAG(std::string, daemon_log, "",
          "keep gpumigd's log (stderr) in this file");

namespace gpumig {
namespace {

namespace gc = ::gpumig::client;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kIoBytes = 4096;

struct Settings {
  std::vector<uint64_t> sizes;
  std::vector<int> threads;
  double seconds = 1;
  uint64_t registration_size = 0;
  int registrations = 5;
  int rounds = 3;
};

absl::StatusOr<uint64_t> ParseSize(absl::string_view s) {
  uint64_t shift = 0;
  for (const auto& [suffix, sh] : {std::pair<const char*, uint64_t>{"GiB", 30},
                                   {"MiB", 20},
                                   {"KiB", 10},
                                   {"B", 0}}) {
    if (absl::EndsWith(s, suffix)) {
      s.remove_suffix(std::strlen(suffix));
      shift = sh;
      break;
    }
  }
  uint64_t n = 0;
  if (!absl::SimpleAtoi(s, &n) || n == 0 || n > (uint64_t{1} << (40 - shift))) {
    return absl::InvalidArgumentError(absl::StrCat("bad size \"", s, "\""));
  }
  n <<= shift;
  if (n % kPage != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("size ", n, " is not a multiple of 4096"));
  }
  return n;
}

std::string SizeName(uint64_t n) {
  if (n == 0) return "-";
  if (n % (uint64_t{1} << 30) == 0) return absl::StrCat(n >> 30, "GiB");
  if (n % (uint64_t{1} << 20) == 0) return absl::StrCat(n >> 20, "MiB");
  if (n % (uint64_t{1} << 10) == 0) return absl::StrCat(n >> 10, "KiB");
  return absl::StrCat(n, "B");
}

// Thread `t`'s pattern of generation `gen`: 64-bit words of an xorshift
// sequence. Fill writes [p, p + n); Matches checks it.
class Pattern {
 public:
  Pattern(uint64_t t, uint64_t gen)
      : x_((t + 1) * 0x9e3779b97f4a7c15ull ^ (gen + 1)) {}
  void Fill(uint8_t* p, uint64_t n) {
    for (uint64_t i = 0; i < n / 8; ++i) {
      const uint64_t w = Next();
      std::memcpy(p + 8 * i, &w, 8);
    }
  }
  bool Matches(const uint8_t* p, uint64_t n) {
    for (uint64_t i = 0; i < n / 8; ++i) {
      const uint64_t want = Next();
      if (std::memcmp(p + 8 * i, &want, 8) != 0) return false;
    }
    return true;
  }

 private:
  uint64_t Next() {
    x_ ^= x_ << 13;
    x_ ^= x_ >> 7;
    x_ ^= x_ << 17;
    return x_;
  }
  uint64_t x_;
};

void FillPattern(uint8_t* p, uint64_t n, uint64_t t, uint64_t gen) {
  Pattern(t, gen).Fill(p, n);
}

bool HasPattern(const uint8_t* p, uint64_t n, uint64_t t, uint64_t gen) {
  return Pattern(t, gen).Matches(p, n);
}

// Anonymous memory, pre-faulted; freed on destruction.
class AnonBuffer {
 public:
  explicit AnonBuffer(uint64_t size) : size_(size) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      p_ = static_cast<uint8_t*>(p);
      std::memset(p_, 1, size);
    }
  }
  ~AnonBuffer() {
    if (p_ != nullptr) munmap(p_, size_);
  }
  AnonBuffer(const AnonBuffer&) = delete;
  AnonBuffer& operator=(const AnonBuffer&) = delete;
  uint8_t* data() const { return p_; }

 private:
  uint64_t size_;
  uint8_t* p_ = nullptr;
};

// One measuring thread's work: set up untimed, Op timed, Check untimed.
class Case {
 public:
  virtual ~Case() = default;
  virtual absl::Status SetUp() { return absl::OkStatus(); }
  virtual absl::Status Op() = 0;
  // Content check (untimed): a pattern goes in and must come back exactly.
  // Sets *mismatch on a difference.
  virtual absl::Status Check(bool* /*mismatch*/) { return absl::OkStatus(); }
  virtual void TearDown() {}
};

class MemcpyCase : public Case {
 public:
  MemcpyCase(uint64_t size, int thread) : size_(size), thread_(thread) {}
  absl::Status SetUp() override {
    a_ = std::make_unique<AnonBuffer>(size_);
    b_ = std::make_unique<AnonBuffer>(size_);
    if (a_->data() == nullptr || b_->data() == nullptr) {
      return absl::ResourceExhaustedError("mmap of the memcpy buffers");
    }
    return absl::OkStatus();
  }
  absl::Status Op() override {
    std::memcpy(b_->data(), a_->data(), size_);
    std::memcpy(a_->data(), b_->data(), size_);
    return absl::OkStatus();
  }
  absl::Status Check(bool* mismatch) override {
    FillPattern(a_->data(), size_, thread_, ++gen_);
    if (absl::Status s = Op(); !s.ok()) return s;
    if (!HasPattern(a_->data(), size_, thread_, gen_)) *mismatch = true;
    return absl::OkStatus();
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
  }

 private:
  const uint64_t size_;
  const int thread_;
  uint64_t gen_ = 0;
  std::unique_ptr<AnonBuffer> a_, b_;
};

// The parts both daemon cases share: a Client and an SMEM object.
class DaemonCase : public Case {
 public:
  DaemonCase(const std::string& socket, uint64_t size, int thread, bool shm)
      : socket_(socket), size_(size), thread_(thread), shm_(shm) {}
  absl::Status SetUp() override {
    gc::ConnectOptions options;
    options.unix_socket = socket_;
    options.use_shared_buffers = shm_;
    absl::StatusOr<std::unique_ptr<gc::Client>> c =
        gc::Client::Connect(options);
    if (!c.ok()) return c.status();
    client_ = *std::move(c);
    if (size_ == 0) return absl::OkStatus();
    gc::CreateObjectOptions create;
    create.size_bytes = size_;
    create.placements = {"smem"};
    create.label = "shm_bench";
    absl::StatusOr<gc::CreateObjectResult> created =
        client_->CreateObject(create);
    if (!created.ok()) return created.status();
    handle_ = created->object.handle;
    return absl::OkStatus();
  }
  void TearDown() override {
    if (!handle_.empty()) (void)client_->DestroyObject(handle_);
    client_.reset();
  }

 protected:
  const std::string socket_;
  const uint64_t size_;
  const int thread_;
  const bool shm_;
  uint64_t gen_ = 0;
  std::unique_ptr<gc::Client> client_;
  std::string handle_;
};

class EmptyRpcCase : public DaemonCase {
 public:
  explicit EmptyRpcCase(const std::string& socket)
      : DaemonCase(socket, 0, 0, false) {}
  absl::Status Op() override { return client_->Ping(); }
};

class StreamCase : public DaemonCase {
 public:
  StreamCase(const std::string& socket, uint64_t size, int thread)
      : DaemonCase(socket, size, thread, /*shm=*/false) {}
  absl::Status SetUp() override {
    if (absl::Status s = DaemonCase::SetUp(); !s.ok()) return s;
    data_ = std::make_unique<AnonBuffer>(size_);
    if (data_->data() == nullptr) {
      return absl::ResourceExhaustedError("mmap of the client buffer");
    }
    return absl::OkStatus();
  }
  absl::Status Op() override {
    if (absl::Status s = WriteAll(); !s.ok()) return s;
    return ReadAll();
  }
  absl::Status Check(bool* mismatch) override {
    FillPattern(data_->data(), size_, thread_, ++gen_);
    if (absl::Status s = WriteAll(); !s.ok()) return s;
    std::memset(data_->data(), 0, size_);
    if (absl::Status s = ReadAll(); !s.ok()) return s;
    if (!HasPattern(data_->data(), size_, thread_, gen_)) *mismatch = true;
    return absl::OkStatus();
  }
  void TearDown() override {
    DaemonCase::TearDown();
    data_.reset();
  }

 private:
  absl::Status WriteAll() {
    absl::StatusOr<uint64_t> w =
        client_->Write(handle_, absl::MakeConstSpan(data_->data(), size_));
    if (!w.ok()) return w.status();
    return *w == size_ ? absl::OkStatus() : absl::InternalError("short Write");
  }
  // Client::ReadChunks into the client buffer (Client::Read would allocate
  // a vector per op).
  absl::Status ReadAll() {
    uint64_t at = 0;
    absl::StatusOr<uint64_t> r = client_->ReadChunks(
        handle_, 0, size_, [&](absl::Span<const uint8_t> chunk) {
          if (chunk.size() > size_ - at) {
            return absl::OutOfRangeError("Read returned too many bytes");
          }
          std::memcpy(data_->data() + at, chunk.data(), chunk.size());
          at += chunk.size();
          return absl::OkStatus();
        });
    if (!r.ok()) return r.status();
    return *r == size_ ? absl::OkStatus() : absl::InternalError("short Read");
  }

  std::unique_ptr<AnonBuffer> data_;
};

class ShmCase : public DaemonCase {
 public:
  ShmCase(const std::string& socket, const std::string& shm_socket,
          uint64_t size, int thread, uint64_t io_bytes)
      : DaemonCase(socket, size, thread, /*shm=*/true),
        shm_socket_(shm_socket),
        io_bytes_(io_bytes) {}
  absl::Status SetUp() override {
    if (absl::Status s = DaemonCase::SetUp(); !s.ok()) return s;
    absl::StatusOr<gc::SharedBuffer> b =
        gc::SharedBuffer::Create(shm_socket_, size_);
    if (!b.ok()) return b.status();
    buffer_ = *std::move(b);
    return absl::OkStatus();
  }
  absl::Status Op() override {
    if (io_bytes_ != 0) {
      // One RPC an op, writes and reads alternately.
      const bool write = (ops_++ % 2) == 0;
      absl::StatusOr<uint64_t> n =
          write ? client_->WriteFrom(handle_, 0, buffer_, 0, io_bytes_)
                : client_->ReadInto(handle_, 0, buffer_, 0, io_bytes_);
      return n.ok() ? absl::OkStatus() : n.status();
    }
    absl::StatusOr<uint64_t> w =
        client_->WriteFrom(handle_, 0, buffer_, 0, size_);
    if (!w.ok()) return w.status();
    absl::StatusOr<uint64_t> r =
        client_->ReadInto(handle_, 0, buffer_, 0, size_);
    return r.ok() ? absl::OkStatus() : r.status();
  }
  absl::Status Check(bool* mismatch) override {
    FillPattern(buffer_.data(), size_, thread_, ++gen_);
    absl::StatusOr<uint64_t> w =
        client_->WriteFrom(handle_, 0, buffer_, 0, size_);
    if (!w.ok()) return w.status();
    std::memset(buffer_.data(), 0, size_);
    absl::StatusOr<uint64_t> r =
        client_->ReadInto(handle_, 0, buffer_, 0, size_);
    if (!r.ok()) return r.status();
    if (!HasPattern(buffer_.data(), size_, thread_, gen_)) *mismatch = true;
    return absl::OkStatus();
  }
  void TearDown() override {
    (void)buffer_.Release();
    DaemonCase::TearDown();
  }

 private:
  const std::string shm_socket_;
  const uint64_t io_bytes_;
  uint64_t ops_ = 0;
  gc::SharedBuffer buffer_;
};

struct Row : bench::RowFigures {
  std::string name;
  uint64_t size = 0;
  int threads = 0;
  uint64_t bytes_per_op = 0;
  std::optional<double> ratio_to_memcpy;
  std::optional<double> ratio_to_empty;
  // Raw sums (Finish derives the rates from them).
  uint64_t ops = 0;
  double seconds = 0;
  double daemon_cpu_s = 0;
  double client_cpu_s = 0;
  std::vector<double> latencies_us;
};

using bench::ThreadResult;

// Runs one row: `make(t)` builds thread t's case.
template <typename Make>
Row RunRow(const std::string& name, uint64_t size, uint64_t bytes_per_op,
           int threads, pid_t daemon_pid, absl::Duration duration, Make make) {
  std::vector<std::unique_ptr<Case>> cases;
  std::vector<ThreadResult> results(threads);
  for (int t = 0; t < threads; ++t) cases.push_back(make(t));
  absl::Barrier* start = new absl::Barrier(threads + 1);  // Deletes itself.
  // No thread checks content (CPU-heavy at 1 GiB) while another still times.
  absl::Barrier* timed = new absl::Barrier(threads + 1);  // Deletes itself.
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      Case& c = *cases[t];
      ThreadResult& r = results[t];
      bool ready = false;
      if (absl::Status s = c.SetUp(); !s.ok()) {
        r.Fail(s);
      } else if (absl::Status s = c.Op(); !s.ok()) {  // warm-up
        r.Fail(s);
      } else {
        bool mismatch = false;
        if (absl::Status s = c.Check(&mismatch); !s.ok()) r.Fail(s);
        if (mismatch) ++r.mismatches;
        ready = r.errors == 0;
      }
      if (start->Block()) delete start;
      if (ready) {
        const absl::Time t0 = absl::Now();
        const absl::Time end = t0 + duration;
        absl::Time now = t0;
        do {
          const absl::Status s = c.Op();
          const absl::Time after = absl::Now();
          if (!s.ok()) {
            r.Fail(s);
            break;
          }
          ++r.ops;
          r.latencies_us.push_back(absl::ToDoubleMicroseconds(after - now));
          now = after;
        } while (now < end);
        r.elapsed = now - t0;
      }
      if (timed->Block()) delete timed;
      if (ready) {
        bool mismatch = false;
        if (absl::Status s = c.Check(&mismatch); !s.ok()) r.Fail(s);
        if (mismatch) ++r.mismatches;
      }
      c.TearDown();
    });
  }
  if (start->Block()) delete start;
  const double daemon_cpu0 = bench::ProcessCpuSeconds(daemon_pid);
  const double client_cpu0 = bench::SelfCpuSeconds();
  if (timed->Block()) delete timed;
  const double daemon_cpu = bench::ProcessCpuSeconds(daemon_pid) - daemon_cpu0;
  const double client_cpu = bench::SelfCpuSeconds() - client_cpu0;
  for (std::thread& w : workers) w.join();

  Row row;
  row.name = name;
  row.size = size;
  row.threads = threads;
  row.bytes_per_op = bytes_per_op;
  absl::Duration elapsed;
  for (ThreadResult& r : results) {
    row.ops += r.ops;
    elapsed = std::max(elapsed, r.elapsed);
    row.errors += r.errors;
    row.mismatches += r.mismatches;
    if (row.first_error.empty()) row.first_error = r.first_error;
    row.latencies_us.insert(row.latencies_us.end(), r.latencies_us.begin(),
                            r.latencies_us.end());
  }
  row.seconds = absl::ToDoubleSeconds(elapsed);
  row.daemon_cpu_s = daemon_cpu;
  row.client_cpu_s = client_cpu;
  return row;
}

// Adds round `r` to `into` (the same case): ops, time and CPU summed.
void Merge(Row& into, Row r) {
  if (into.name.empty()) {
    into = std::move(r);
    return;
  }
  into.ops += r.ops;
  into.seconds += r.seconds;
  into.daemon_cpu_s += r.daemon_cpu_s;
  into.client_cpu_s += r.client_cpu_s;
  into.errors += r.errors;
  into.mismatches += r.mismatches;
  if (into.first_error.empty()) into.first_error = r.first_error;
  into.latencies_us.insert(into.latencies_us.end(), r.latencies_us.begin(),
                           r.latencies_us.end());
}

// The rates and percentiles of a (merged) row.
void Finish(Row& row) {
  row.ops_per_s = row.seconds > 0 ? row.ops / row.seconds : 0;
  row.gbps = row.ops_per_s * row.bytes_per_op / 1e9;
  if (row.ops > 0) {
    row.daemon_cpu_us_per_op = row.daemon_cpu_s * 1e6 / row.ops;
    row.client_cpu_us_per_op = row.client_cpu_s * 1e6 / row.ops;
  }
  row.p50_us = bench::Percentile(row.latencies_us, 0.50);
  row.p99_us = bench::Percentile(row.latencies_us, 0.99);
  row.latencies_us.clear();
}

struct Registration {
  uint64_t size = 0;
  double register_ms_median = 0;
  double register_ms_max = 0;
  double unregister_ms_median = 0;
  double client_create_ms = 0;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// REGISTER of an existing sealed memfd of `size` to its reply, `n` times
// (each then unregistered, also timed), and one whole SharedBuffer::Create.
absl::StatusOr<Registration> TimeRegistration(const std::string& shm_socket,
                                              uint64_t size, int n) {
  Registration out;
  out.size = size;
  int sock = shm::ConnectRegistration(shm_socket);
  if (sock < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", shm_socket));
  }
  std::vector<double> reg, unreg;
  absl::Status status;
  for (int i = 0; i < n && status.ok(); ++i) {
    absl::StatusOr<int> fd = gc::CreateSealedMemfd(size);
    if (!fd.ok()) {
      status = fd.status();
      break;
    }
    shm::ShmRequest r;
    r.op = shm::kOpRegister;
    r.tag = i + 1;
    r.size = size;
    shm::ShmReply rep;
    const absl::Time t0 = absl::Now();
    const bool sent = shm::SendRequest(sock, r, {*fd});
    const bool got = sent && shm::RecvReply(sock, &rep);
    const absl::Time t1 = absl::Now();
    close(*fd);
    if (!got || rep.error != 0) {
      status = absl::InternalError(
          absl::StrCat("REGISTER of ", size, " bytes failed: error ", rep.error,
                       " ", std::string(rep.message)));
      break;
    }
    reg.push_back(absl::ToDoubleMilliseconds(t1 - t0));
    shm::ShmRequest u;
    u.op = shm::kOpUnregister;
    u.tag = i + 1;
    u.buffer_id = rep.buffer_id;
    const absl::Time t2 = absl::Now();
    const bool ok = shm::SendRequest(sock, u, {}) &&
                    shm::RecvReply(sock, &rep) && rep.error == 0;
    unreg.push_back(absl::ToDoubleMilliseconds(absl::Now() - t2));
    if (!ok) status = absl::InternalError("UNREGISTER failed");
  }
  close(sock);
  if (!status.ok()) return status;
  out.register_ms_median = Median(reg);
  out.register_ms_max = *std::max_element(reg.begin(), reg.end());
  out.unregister_ms_median = Median(unreg);
  const absl::Time t0 = absl::Now();
  absl::StatusOr<gc::SharedBuffer> b =
      gc::SharedBuffer::Create(shm_socket, size);
  out.client_create_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
  if (!b.ok()) return b.status();
  return out;
}

absl::StatusOr<Settings> ParseSettings() {
  Settings s;
  const bool smoke = absl::GetFlag(FLAGS_smoke);
  const std::string sizes = smoke ? "4KiB,1MiB" : absl::GetFlag(FLAGS_sizes);
  const std::string threads = smoke ? "1,2" : absl::GetFlag(FLAGS_threads);
  s.seconds = smoke ? 0.05 : absl::GetFlag(FLAGS_seconds);
  s.registrations = smoke ? 2 : absl::GetFlag(FLAGS_registrations);
  s.rounds = smoke ? 1 : absl::GetFlag(FLAGS_rounds);
  for (absl::string_view v : absl::StrSplit(sizes, ',', absl::SkipEmpty())) {
    if (v == "none") continue;
    absl::StatusOr<uint64_t> n = ParseSize(v);
    if (!n.ok()) return n.status();
    s.sizes.push_back(*n);
  }
  for (absl::string_view t : absl::StrSplit(threads, ',', absl::SkipEmpty())) {
    int n = 0;
    if (!absl::SimpleAtoi(t, &n) || n <= 0 || n > 64) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad --threads entry \"", t, "\""));
    }
    s.threads.push_back(n);
  }
  absl::StatusOr<uint64_t> reg =
      ParseSize(smoke ? "4MiB" : absl::GetFlag(FLAGS_registration_size));
  if (!reg.ok()) return reg.status();
  s.registration_size = *reg;
  if (s.threads.empty() || !(s.seconds > 0) || s.seconds > 3600 ||
      s.registrations < 1 || s.registrations > 1000 || s.rounds < 1 ||
      s.rounds > 100) {
    return absl::InvalidArgumentError(
        "need threads, --seconds in (0, 3600], --registrations in "
        "[1, 1000], --rounds in [1, 100]");
  }
  return s;
}

// SMEM for one object of the largest size per thread (plus slack), limits
// for one buffer of it per thread plus the timed registration.
std::string DaemonConfig(const Settings& s) {
  const uint64_t max_size =
      s.sizes.empty() ? kIoBytes
                      : *std::max_element(s.sizes.begin(), s.sizes.end());
  const int max_threads = *std::max_element(s.threads.begin(), s.threads.end());
  const uint64_t smem_mib =
      (max_size * max_threads >> 20) + std::max<uint64_t>(64, max_threads);
  const uint64_t shm_bytes =
      max_size * max_threads + 2 * s.registration_size + (64ull << 20);
  return absl::StrCat(
      "backend: \"sim\"\n"
      "regions { name: \"lmem\" kind: LMEM size: \"256MiB\" aperture: "
      "\"64MiB\" }\n"
      "regions { name: \"smem\" kind: SMEM size: \"",
      smem_mib,
      "MiB\" }\n"
      "listeners { unix_socket { shared_buffers { max_buffers_per_principal: "
      "256 max_bytes_per_principal_bytes: ",
      shm_bytes, " max_total_bytes_bytes: ", shm_bytes,
      " } } }\n"
      "log_level: \"warn\"\n");
}

void PrintRow(const Row& r, bool last) {
  std::string extra;
  if (r.ratio_to_memcpy) {
    absl::StrAppendFormat(&extra, ", \"ratio_to_memcpy\": %.4g",
                          *r.ratio_to_memcpy);
  }
  if (r.ratio_to_empty) {
    absl::StrAppendFormat(&extra, ", \"ratio_to_empty\": %.4g",
                          *r.ratio_to_empty);
  }
  if (!r.first_error.empty()) {
    absl::StrAppend(&extra, ", \"first_error\": \"", JsonEscape(r.first_error),
                    "\"");
  }
  std::printf(
      "    {\"case\": \"%s\", \"size_bytes\": %llu, \"threads\": %d, "
      "\"ops_per_s\": %.1f, \"gbps\": %.3f, \"bytes_per_op\": %llu, "
      "\"p50_us\": %.1f, \"p99_us\": %.1f, \"errors\": %llu, "
      "\"mismatches\": %llu, \"daemon_cpu_us_per_op\": %.1f, "
      "\"client_cpu_us_per_op\": %.1f%s}%s\n",
      r.name.c_str(), static_cast<unsigned long long>(r.size), r.threads,
      r.ops_per_s, r.gbps, static_cast<unsigned long long>(r.bytes_per_op),
      r.p50_us, r.p99_us, static_cast<unsigned long long>(r.errors),
      static_cast<unsigned long long>(r.mismatches), r.daemon_cpu_us_per_op,
      r.client_cpu_us_per_op, extra.c_str(), last ? "" : ",");
}

int Main(int argc, char** argv) {
  absl::StatusOr<Settings> settings = ParseSettings();
  if (!settings.ok()) {
    std::fprintf(stderr, "shm_bench: %s\n",
                 std::string(settings.status().message()).c_str());
    return 2;
  }
  const Settings& s = *settings;
  const std::string binary =
      bench::FindDaemon(argv[0], absl::GetFlag(FLAGS_gpumigd));
  if (binary.empty()) {
    std::fprintf(stderr,
                 "shm_bench: cannot find gpumigd (give --gpumigd=PATH or "
                 "$GPUMIGD, or run under bazel run)\n");
    return 1;
  }
  bench::BenchDaemon daemon(absl::GetFlag(FLAGS_daemon_log));
  if (absl::Status st = daemon.Start(binary, DaemonConfig(s), {}); !st.ok()) {
    std::fprintf(stderr, "shm_bench: %s\n", st.ToString().c_str());
    return 1;
  }
  std::string shm_socket;
  {
    gc::ConnectOptions options;
    options.unix_socket = daemon.socket();
    absl::StatusOr<std::unique_ptr<gc::Client>> c =
        gc::Client::Connect(options);
    absl::StatusOr<gc::DaemonInfo> info =
        c.ok() ? (*c)->GetInfo() : absl::StatusOr<gc::DaemonInfo>(c.status());
    if (!info.ok() || info->shared_buffer_socket.empty()) {
      std::fprintf(stderr, "shm_bench: the daemon has no shared buffers\n");
      return 1;
    }
    shm_socket = info->shared_buffer_socket;
  }
  std::fprintf(stderr, "shm_bench: gpumigd %s on %s, %.2f s per row\n",
               binary.c_str(), daemon.socket().c_str(), s.seconds);
  const absl::Duration duration = absl::Seconds(s.seconds);
  const pid_t dpid = daemon.pid();
  const std::string sock = daemon.socket();

  std::vector<Row> rows;
  auto add = [&rows](Row r) {
    std::fprintf(stderr,
                 "shm_bench: %-17s %7s x%d  %10.1f ops/s  %7.3f GB/s  "
                 "errors=%llu\n",
                 r.name.c_str(), SizeName(r.size).c_str(), r.threads,
                 r.ops_per_s, r.gbps,
                 static_cast<unsigned long long>(r.errors));
    rows.push_back(std::move(r));
  };
  // The rows compared with each other run interleaved, in --rounds rounds
  // of --seconds / rounds each (one round for sizes above 64 MiB, whose ops
  // are long), so that a change of load on a shared machine hits them alike.
  auto interleaved = [&](int rounds, std::vector<Row>* out,
                         const std::vector<std::function<Row()>>& runs) {
    out->assign(runs.size(), Row());
    for (int r = 0; r < rounds; ++r) {
      for (size_t i = 0; i < runs.size(); ++i) Merge((*out)[i], runs[i]());
    }
    for (Row& row : *out) Finish(row);
  };
  const absl::Duration slice = duration / s.rounds;
  for (int threads : s.threads) {
    std::vector<Row> pair;
    interleaved(s.rounds, &pair,
                {[&] {
                   return RunRow("empty_rpc", 0, 0, threads, dpid, slice,
                                 [&](int) {
                                   return std::make_unique<EmptyRpcCase>(sock);
                                 });
                 },
                 [&] {
                   return RunRow("shm_io_4k", kIoBytes, kIoBytes, threads, dpid,
                                 slice, [&](int t) {
                                   return std::make_unique<ShmCase>(
                                       sock, shm_socket, kIoBytes, t, kIoBytes);
                                 });
                 }});
    if (pair[0].ops_per_s > 0) {
      pair[1].ratio_to_empty = pair[1].ops_per_s / pair[0].ops_per_s;
    }
    for (Row& r : pair) add(std::move(r));
  }
  for (uint64_t size : s.sizes) {
    for (int threads : s.threads) {
      const int rounds = size > (64ull << 20) ? 1 : s.rounds;
      const absl::Duration d = duration / rounds;
      std::vector<Row> three;
      interleaved(
          rounds, &three,
          {[&] {
             return RunRow(
                 "memcpy", size, 2 * size, threads, dpid, d,
                 [&](int t) { return std::make_unique<MemcpyCase>(size, t); });
           },
           [&] {
             return RunRow("stream_write_read", size, 2 * size, threads, dpid,
                           d, [&](int t) {
                             return std::make_unique<StreamCase>(sock, size, t);
                           });
           },
           [&] {
             return RunRow("shm_write_read", size, 2 * size, threads, dpid, d,
                           [&](int t) {
                             return std::make_unique<ShmCase>(sock, shm_socket,
                                                              size, t, 0);
                           });
           }});
      if (three[0].gbps > 0) {
        three[1].ratio_to_memcpy = three[1].gbps / three[0].gbps;
        three[2].ratio_to_memcpy = three[2].gbps / three[0].gbps;
      }
      for (Row& r : three) add(std::move(r));
    }
  }
  bool failed = false;
  for (const Row& r : rows) {
    if (r.errors > 0 || r.mismatches > 0) {
      std::fprintf(stderr,
                   "shm_bench: %s %s x%d: %llu errors (first: %s), %llu "
                   "content mismatches\n",
                   r.name.c_str(), SizeName(r.size).c_str(), r.threads,
                   static_cast<unsigned long long>(r.errors),
                   r.first_error.c_str(),
                   static_cast<unsigned long long>(r.mismatches));
      failed = true;
    }
  }
  absl::StatusOr<Registration> reg =
      TimeRegistration(shm_socket, s.registration_size, s.registrations);
  if (!reg.ok()) {
    std::fprintf(stderr, "shm_bench: registration: %s\n",
                 reg.status().ToString().c_str());
    failed = true;
  }

  const int exit_status = daemon.Stop();
  if (exit_status != 0) {
    std::fprintf(stderr,
                 "shm_bench: gpumigd did not exit 0 on SIGTERM (status %d)\n",
                 exit_status);
    failed = true;
  }
  if (failed) {
    std::fprintf(stderr, "shm_bench: gpumigd log:\n%s\n",
                 bench::ReadFileOrEmpty(daemon.log()).c_str());
  }

  // Goals.
  double shm_min = -1, io_min = -1;
  for (const Row& r : rows) {
    if (r.name == "shm_write_read" && r.ratio_to_memcpy &&
        (r.size == (64ull << 20) || r.size == (1ull << 30))) {
      shm_min = shm_min < 0 ? *r.ratio_to_memcpy
                            : std::min(shm_min, *r.ratio_to_memcpy);
    }
    if (r.name == "shm_io_4k" && r.ratio_to_empty) {
      io_min =
          io_min < 0 ? *r.ratio_to_empty : std::min(io_min, *r.ratio_to_empty);
    }
  }
  const double reg_ms = reg.ok() ? reg->register_ms_median : -1;
  const bool met = (shm_min < 0 || shm_min >= 0.8) && io_min >= 0.8 &&
                   reg.ok() && reg_ms < 50;

  std::printf("{\n  \"rows\": [\n");
  for (size_t i = 0; i < rows.size(); ++i) {
    PrintRow(rows[i], i + 1 == rows.size());
  }
  std::printf("  ],\n");
  if (reg.ok()) {
    std::printf(
        "  \"registration\": {\"size_bytes\": %llu, \"register_ms_median\": "
        "%.3f, \"register_ms_max\": %.3f, \"unregister_ms_median\": %.3f, "
        "\"client_create_ms\": %.1f},\n",
        static_cast<unsigned long long>(reg->size), reg->register_ms_median,
        reg->register_ms_max, reg->unregister_ms_median, reg->client_create_ms);
  }
  std::printf(
      "  \"goals\": {\"shm_vs_memcpy_min_64MiB_1GiB\": %.3f, "
      "\"shm_4k_vs_empty_min\": %.3f, \"register_ms\": %.3f, \"met\": %s}\n}\n",
      shm_min, io_min, reg_ms, met ? "true" : "false");
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
