#include "tests/torture/campaign_shm.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstring>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/shm_wire.h"

namespace gpumig::torture {
namespace {

namespace wire = ::gpumig::shm_wire;

constexpr uint64_t kVictimBytes = 1 << 20;
// Streams of DeriveSeed: the workers use 1..clients, the schedule 0.
constexpr uint64_t kShmStreamBase = 1 << 20;
constexpr uint8_t kPoison = 0xa5;

std::string Code(const absl::Status& s) {
  return absl::StatusCodeToString(s.code());
}

void CountRpc(CampaignStats* stats, const char* method, const absl::Status& s) {
  MethodStats& m = stats->rpcs[method];
  ++m.calls;
  if (!s.ok()) ++m.errors[Code(s)];
}

// The victim: registers a sealed memfd of kVictimBytes on `addr`, reports
// the buffer id on `out` (0 on failure) and scribbles on the buffer and
// punches holes in it until killed. Only async-signal-safe calls: it runs in
// the child of a multi-threaded (gRPC) process.
[[noreturn]] void Victim(const sockaddr_un& addr, int out,
                         const std::array<uint8_t, wire::kRequestBytes>& req) {
  uint64_t id = 0;
  int fd =
      memfd_create("gpumig-torture-victim", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  void* p = MAP_FAILED;
  if (fd >= 0 && fallocate(fd, 0, 0, kVictimBytes) == 0 &&
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0) {
    p = mmap(nullptr, kVictimBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  if (p != MAP_FAILED && s >= 0 &&
      connect(s, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
    iovec iov{const_cast<uint8_t*>(req.data()), req.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    uint8_t reply[wire::kReplyBytes];
    if (sendmsg(s, &msg, MSG_NOSIGNAL) ==
            static_cast<ssize_t>(wire::kRequestBytes) &&
        recv(s, reply, sizeof(reply), 0) ==
            static_cast<ssize_t>(wire::kReplyBytes)) {
      uint32_t error;
      std::memcpy(&error, reply + 16, 4);  // little-endian hosts only
      if (error == 0) std::memcpy(&id, reply + 24, 8);
    }
  }
  if (write(out, &id, sizeof(id)) != sizeof(id) || id == 0) _exit(1);
  uint8_t* b = static_cast<uint8_t*>(p);
  for (uint64_t round = 0;; ++round) {
    std::memset(b, static_cast<int>(round), kVictimBytes);
    const off_t at = static_cast<off_t>((round * 65536) % kVictimBytes);
    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, at, 65536);
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// ShmIo

ShmIo::ShmIo(const CampaignOptions& options, int index, uint64_t capacity)
    : share_(options.shm_share),
      tcp_(!options.connect.tcp_target.empty()),
      capacity_(capacity),
      rng_(DeriveSeed(options.seed, kShmStreamBase + index)) {}

bool ShmIo::UseBuffer(client::Client& cl, uint64_t length,
                      CampaignStats* stats) {
  if (tcp_ || share_ <= 0 || length == 0 || length > capacity_) return false;
  if (!rng_.Chance(share_)) return false;
  if (!tried_) {
    tried_ = true;
    absl::StatusOr<client::DaemonInfo> info = cl.GetInfo();
    if (info.ok() && !info->shared_buffer_socket.empty()) {
      absl::StatusOr<client::SharedBuffer> b =
          client::SharedBuffer::Create(info->shared_buffer_socket, capacity_);
      if (b.ok()) {
        buffer_ = *std::move(b);
      } else {
        ++stats->ops_by_kind["shm-buffer-refused"];
      }
    }
  }
  return buffer_.has_value();
}

absl::StatusOr<uint64_t> ShmIo::Write(client::Client& cl,
                                      const std::string& handle,
                                      absl::Span<const uint8_t> data,
                                      uint64_t offset,
                                      const client::CallOptions& call,
                                      CampaignStats* stats,
                                      const char** method) {
  if (!UseBuffer(cl, data.size(), stats)) {
    *method = "Write";
    return cl.Write(handle, data, offset, call);
  }
  *method = "WriteFromBuffer";
  ++stats->ops_by_kind["shm-write"];
  const uint64_t at = rng_.Below(capacity_ - data.size() + 1);
  std::memcpy(buffer_->data() + at, data.data(), data.size());
  return cl.WriteFrom(handle, offset, *buffer_, at, data.size(), call);
}

absl::StatusOr<std::vector<uint8_t>> ShmIo::Read(
    client::Client& cl, const std::string& handle, uint64_t offset,
    uint64_t length, const client::CallOptions& call, CampaignStats* stats,
    const char** method) {
  if (!UseBuffer(cl, length, stats)) {
    *method = "Read";
    return cl.Read(handle, offset, length, call);
  }
  *method = "ReadToBuffer";
  ++stats->ops_by_kind["shm-read"];
  const uint64_t at = rng_.Below(capacity_ - length + 1);
  std::memset(buffer_->data() + at, kPoison, length);
  absl::StatusOr<uint64_t> n =
      cl.ReadInto(handle, offset, *buffer_, at, length, call);
  if (!n.ok()) return n.status();
  return std::vector<uint8_t>(buffer_->data() + at, buffer_->data() + at + *n);
}

// ---------------------------------------------------------------------------
// ShmKiller

ShmKiller::ShmKiller(Campaign* campaign, std::unique_ptr<client::Client> cl)
    : c_(*campaign),
      cl_(std::move(cl)),
      rng_(DeriveSeed(campaign->options().seed, kShmStreamBase - 1)) {}

bool ShmKiller::Note(const char* method, const absl::Status& s) {
  CountRpc(&stats_, method, s);
  if (!s.ok()) c_.NoteStatus(s);
  return s.ok();
}

bool ShmKiller::EnsureScratch() {
  if (!scratch_.empty()) return true;
  client::CreateObjectOptions o;
  o.size_bytes = kVictimBytes;
  o.placements = {c_.layout().smem};
  o.label = "torture-shm-killer";
  absl::StatusOr<client::CreateObjectResult> r = cl_->CreateObject(o);
  if (!Note("CreateObject", r.status())) return false;
  scratch_ = r->object.handle;
  return true;
}

void ShmKiller::Run() {
  const CampaignOptions& opt = c_.options();
  if (!opt.connect.tcp_target.empty() ||
      opt.shm_kill_every <= absl::ZeroDuration()) {
    return;
  }
  absl::StatusOr<client::DaemonInfo> info = cl_->GetInfo();
  if (!info.ok() || info->shared_buffer_socket.empty()) return;
  while (!c_.stopping() && !c_.unavailable()) {
    Round(info->shared_buffer_socket);
    const absl::Time next =
        absl::Now() + opt.shm_kill_every * (0.5 + rng_.Unit());
    while (!c_.stopping() && absl::Now() < next) {
      absl::SleepFor(absl::Milliseconds(20));  // Stop-poll interval.
    }
  }
  if (!scratch_.empty() && !c_.unavailable()) {
    Note("DestroyObject", cl_->DestroyObject(scratch_));
    scratch_.clear();
  }
}

void ShmKiller::Round(const std::string& shm_socket) {
  if (!EnsureScratch()) return;
  sockaddr_un addr{};
  if (shm_socket.size() >= sizeof(addr.sun_path)) return;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, shm_socket.data(), shm_socket.size());
  wire::Request request;
  request.op = wire::kOpRegister;
  request.tag = 1;
  request.size = kVictimBytes;
  const std::array<uint8_t, wire::kRequestBytes> req =
      wire::EncodeRequest(request);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return;
  const pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    Victim(addr, p[1], req);
  }
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return;
  }
  ++stats_.ops_by_kind["shm-kill"];
  uint64_t id = 0;
  pollfd pfd{p[0], POLLIN, 0};
  const bool got = poll(&pfd, 1, 10000) == 1 &&
                   read(p[0], &id, sizeof(id)) == sizeof(id) && id != 0;
  close(p[0]);
  auto reap = [pid] {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  };
  if (!got) {
    reap();
    // A registration refused at a limit (other workers' buffers) is no
    // finding; one that never answered is.
    ++stats_.ops_by_kind["shm-kill-unregistered"];
    return;
  }
  // Copies through the victim's buffer, until it is gone.
  std::atomic<int> ok{0};
  std::atomic<bool> ended{false};
  std::atomic<bool> stop{false};
  std::atomic<bool> lost{false};  // the scratch object went unknown
  client::CallOptions call;
  call.timeout = c_.options().rpc_timeout;
  std::thread copier([&] {
    for (uint64_t i = 0; !stop.load() && !c_.unavailable(); ++i) {
      const bool write = i % 2 == 0;
      const char* method = write ? "WriteFromBuffer" : "ReadToBuffer";
      absl::StatusOr<uint64_t> n =
          write ? cl_->WriteFromBufferId(scratch_, 0, id, 0, kVictimBytes, call)
                : cl_->ReadToBufferId(scratch_, 0, id, 0, kVictimBytes, call);
      CountRpc(&stats_, method, n.status());
      if (n.ok()) {
        ++ok;
        continue;
      }
      const absl::StatusCode code = n.status().code();
      if (code == absl::StatusCode::kNotFound) {
        ended = true;
        return;
      }
      if (code == absl::StatusCode::kUnavailable) {
        c_.NoteStatus(n.status());
        return;
      }
      if (code == absl::StatusCode::kDataLoss) {
        lost = true;  // faults made the scratch object unknown
        return;
      }
      if (code != absl::StatusCode::kAborted &&
          code != absl::StatusCode::kDeadlineExceeded) {
        c_.AddViolation("shm", "shm-copy-undocumented-status",
                        absl::StrCat(method, " through a live client's buffer ",
                                     id, ": ", n.status().ToString()));
        return;
      }
    }
  });
  // Kill once a copy went through, or after a bounded wait.
  const absl::Time kill_by = absl::Now() + absl::Seconds(5);
  while (ok.load() < 1 + static_cast<int>(rng_.Below(3)) && !ended.load() &&
         absl::Now() < kill_by && !c_.unavailable() && !lost.load()) {
    absl::SleepFor(absl::Milliseconds(1));  // Poll interval.
  }
  absl::SleepFor(absl::Microseconds(rng_.Below(5000)));  // mid-copy, likely
  reap();
  // The daemon must end the buffer with the connection (bounded).
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!ended.load() && absl::Now() < deadline && !c_.unavailable() &&
         !lost.load()) {
    absl::SleepFor(absl::Milliseconds(5));  // Poll interval.
  }
  stop = true;
  copier.join();
  if (c_.unavailable()) return;
  if (lost.load()) {
    // A new scratch object next round; this one is refused from now on.
    Note("DestroyObject", cl_->DestroyObject(scratch_));
    scratch_.clear();
    return;
  }
  if (!ended.load()) {
    absl::StatusOr<uint64_t> n =
        cl_->ReadToBufferId(scratch_, 0, id, 0, kVictimBytes, call);
    CountRpc(&stats_, "ReadToBuffer", n.status());
    if (n.status().code() != absl::StatusCode::kNotFound &&
        n.status().code() != absl::StatusCode::kDataLoss) {
      c_.AddViolation(
          "shm", "shm-buffer-outlived-client",
          absl::StrCat("buffer ", id, " of a SIGKILLed client: ",
                       n.ok() ? std::string("OK") : n.status().ToString(),
                       " 10 s after the kill (want NOT_FOUND)"));
    }
  }
  Note("Ping", cl_->Ping(call));
}

}  // namespace gpumig::torture
