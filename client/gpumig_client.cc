#include "client/gpumig_client.h"

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <istream>
#include <iterator>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/convert.h"
#include "common/utf8.h"
#include "gpumig/v1/daemon.grpc.pb.h"
#include "gpumig/v1/faults.grpc.pb.h"
#include "gpumig/v1/fences.grpc.pb.h"
#include "gpumig/v1/objects.grpc.pb.h"
#include "gpumig/v1/regions.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "proto/enum_names.h"

namespace gpumig::client {
namespace {

namespace pb = ::gpumig::v1;

using internal::CodeToStatus;
using internal::FromGrpc;
using internal::FromProto;
using internal::MakeSubmitResult;
using internal::ToProto;

// Extra time a WaitFence RPC gets beyond the wait's own timeout, so the
// daemon's DEADLINE_EXCEEDED (with its message) wins over the transport's.
constexpr absl::Duration kWaitGrace = absl::Seconds(5);
// Deadlines further out than this are treated as "none" (avoids overflow in
// the chrono conversion).
constexpr absl::Duration kMaxDeadline = absl::Hours(24 * 365);

// Applies the deadline and wait-for-ready policy of `call` to `context`.
// `default_timeout` is used when call.timeout is zero; InfiniteDuration
// means no deadline.
void Apply(const CallOptions& call, absl::Duration default_timeout,
           grpc::ClientContext* context) {
  absl::Duration timeout =
      call.timeout == absl::ZeroDuration() ? default_timeout : call.timeout;
  if (timeout < kMaxDeadline) {
    context->set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoNanoseconds(timeout));
  }
  context->set_wait_for_ready(call.wait_for_ready);
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot read ", path));
  }
  return contents.str();
}

// Names: the enum value's wire name without its prefix.
std::string Canonical(absl::string_view name) {
  std::string out = absl::AsciiStrToUpper(name);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

// The short name of the wire value `v` maps to; "UNSPECIFIED" for a value
// not in `table`.
template <typename Local, typename Proto, size_t N>
const char* NameIn(const enums::EnumPair<Local, Proto> (&table)[N], Local v) {
  return enums::ShortName(enums::ProtoOf(table, v)).data();
}

// The value of `table` named `name` (any case, '-' for '_'); INVALID_ARGUMENT
// listing the names otherwise.
template <typename Local, typename Proto, size_t N>
absl::StatusOr<Local> ParseEnum(
    absl::string_view what, absl::string_view name,
    const enums::EnumPair<Local, Proto> (&table)[N]) {
  const std::string canonical = Canonical(name);
  std::vector<std::string> valid;
  for (const enums::EnumPair<Local, Proto>& p : table) {
    const absl::string_view short_name = enums::ShortName(p.proto);
    if (canonical == short_name) return p.local;
    valid.push_back(absl::AsciiStrToLower(short_name));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown ", what, " '", name, "' (one of ",
                   absl::StrJoin(valid, ", "), ")"));
}

}  // namespace

// --- Names -----------------------------------------------------------------

std::string DefaultSocketPath() {
  const char* env = std::getenv("GPUMIG_SOCKET");
  if (env != nullptr && env[0] != '\0') return env;
  return kDefaultSocketPath;
}

const char* FenceStateName(FenceState v) {
  return NameIn(internal::kFenceStates, v);
}
const char* FenceKindName(FenceKind v) {
  return NameIn(internal::kFenceKinds, v);
}
const char* FenceOutcomeName(FenceOutcome v) {
  return NameIn(internal::kFenceOutcomes, v);
}
const char* ObjectStateName(ObjectState v) {
  return NameIn(internal::kObjectStates, v);
}
const char* RegionKindName(RegionKind v) {
  return NameIn(internal::kRegionKinds, v);
}
const char* EventKindName(EventKind v) {
  return NameIn(internal::kEventKinds, v);
}
const char* FaultKindName(FaultKind v) {
  return NameIn(internal::kFaultKinds, v);
}

absl::StatusOr<FaultKind> ParseFaultKind(absl::string_view name) {
  return ParseEnum("fault kind", name, internal::kFaultKinds);
}

absl::StatusOr<FenceKind> ParseFenceKind(absl::string_view name) {
  // The engine operations: every fence kind but the array, which runs none.
  static constexpr enums::EnumPair<FenceKind, ::gpumig::v1::FenceKind>
      kEngineOps[] = {internal::kFenceKinds[0], internal::kFenceKinds[1],
                      internal::kFenceKinds[2], internal::kFenceKinds[3]};
  static_assert(std::size(internal::kFenceKinds) == 5 &&
                internal::kFenceKinds[4].local == FenceKind::kArray);
  if (Canonical(name) == "COPY") return FenceKind::kMigrate;
  return ParseEnum("operation", name, kEngineOps);
}

absl::StatusOr<EventKind> ParseEventKind(absl::string_view name) {
  return ParseEnum("event kind", name, internal::kEventKinds);
}

std::vector<FaultKind> AllFaultKinds() {
  std::vector<FaultKind> kinds;
  for (const auto& p : internal::kFaultKinds) kinds.push_back(p.local);
  return kinds;
}

// --- WatchCanceller --------------------------------------------------------

struct WatchCanceller::State {
  absl::Mutex mu;
  bool cancelled ABSL_GUARDED_BY(mu) = false;
  // The running Watch's context, registered for the duration of the call.
  grpc::ClientContext* context ABSL_GUARDED_BY(mu) = nullptr;
};

WatchCanceller::WatchCanceller() : state_(std::make_shared<State>()) {}

void WatchCanceller::Cancel() {
  absl::MutexLock lock(&state_->mu);
  state_->cancelled = true;
  // TryCancel does not block and is safe from any thread; holding mu keeps
  // the context alive (Watch unregisters under mu before destroying it).
  if (state_->context != nullptr) state_->context->TryCancel();
}

bool WatchCanceller::cancelled() const {
  absl::MutexLock lock(&state_->mu);
  return state_->cancelled;
}

// --- Client ----------------------------------------------------------------

struct Client::Impl {
  // Constant after construction.
  ConnectOptions options;
  std::string target;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::DaemonService::Stub> daemon;
  std::unique_ptr<pb::ObjectService::Stub> objects;
  std::unique_ptr<pb::FenceService::Stub> fences;
  std::unique_ptr<pb::RegionService::Stub> regions;
  std::unique_ptr<pb::FaultService::Stub> faults;

  void Prepare(const CallOptions& call, grpc::ClientContext* context) const {
    Apply(call, options.default_timeout, context);
  }

  // Shared buffers for large Write/Read: idle ones are cached for reuse.
  absl::Mutex shm_mu;
  bool shm_off ABSL_GUARDED_BY(shm_mu) = false;  // unusable: use streams
  bool shm_socket_known ABSL_GUARDED_BY(shm_mu) = false;
  std::string shm_socket ABSL_GUARDED_BY(shm_mu);
  std::vector<std::unique_ptr<SharedBuffer>> shm_idle ABSL_GUARDED_BY(shm_mu);

  // A cached or new buffer of kSharedBufferChunkBytes, or nullptr when the
  // streams must be used (TCP, option off, no socket, refused).
  std::unique_ptr<SharedBuffer> AcquireShm(Client* client,
                                           const CallOptions& call);
  void ReleaseShm(std::unique_ptr<SharedBuffer> buffer);
  void DisableShm() {
    absl::MutexLock lock(&shm_mu);
    shm_off = true;
    shm_idle.clear();
  }
  grpc::Status CopyShm(bool write, absl::string_view handle, uint64_t offset,
                       uint64_t buffer_id, uint64_t buffer_offset,
                       uint64_t length, const CallOptions& call,
                       uint64_t* copied);

  // The client this is the Impl of (for GetInfo).
  Client* self = nullptr;

  // Writes what `source` (which fills a buffer and returns the byte count,
  // 0 at EOF) yields: through a shared buffer when usable and the input is
  // at least kSharedBufferThresholdBytes, else streamed.
  // `known_size`: the input's size when known (below the threshold: no
  // shared buffer is even acquired).
  absl::StatusOr<uint64_t> WriteFrom(
      absl::string_view handle, uint64_t offset,
      const std::function<absl::StatusOr<size_t>(char*, size_t)>& source,
      const CallOptions& call, uint64_t known_size = UINT64_MAX);
  // Streams chunks from `source` to a Write RPC.
  absl::StatusOr<uint64_t> StreamFrom(
      absl::string_view handle, uint64_t offset,
      const std::function<absl::StatusOr<size_t>(char*, size_t)>& source,
      const CallOptions& call);
};

// Whether a shared-buffer call's failure means "this path is unusable here"
// (nothing was copied), so the caller may fall back to streams.
static bool ShmUnusable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
         s.error_code() == grpc::StatusCode::UNIMPLEMENTED;
}

// Fills buffer[0, capacity) from `source` until full or EOF.
static absl::StatusOr<size_t> Fill(
    const std::function<absl::StatusOr<size_t>(char*, size_t)>& source,
    char* buffer, size_t capacity, bool* eof) {
  size_t filled = 0;
  *eof = false;
  while (filled < capacity) {
    absl::StatusOr<size_t> n = source(buffer + filled, capacity - filled);
    if (!n.ok()) return n.status();
    if (*n == 0) {
      *eof = true;
      break;
    }
    filled += *n;
  }
  return filled;
}

absl::StatusOr<uint64_t> Client::Impl::WriteFrom(
    absl::string_view handle, uint64_t offset,
    const std::function<absl::StatusOr<size_t>(char*, size_t)>& source,
    const CallOptions& call, uint64_t known_size) {
  std::unique_ptr<SharedBuffer> b;
  if (known_size >= kSharedBufferThresholdBytes) b = AcquireShm(self, call);
  if (b == nullptr) return StreamFrom(handle, offset, source, call);
  char* data = reinterpret_cast<char*>(b->data());
  bool eof = false;
  absl::StatusOr<size_t> filled = Fill(source, data, b->size(), &eof);
  if (!filled.ok()) {
    ReleaseShm(std::move(b));
    return filled.status();
  }
  uint64_t total = 0;
  if (!eof || *filled >= kSharedBufferThresholdBytes) {
    while (true) {
      uint64_t n = 0;
      grpc::Status s =
          CopyShm(true, handle, offset + total, b->id(), 0, *filled, call, &n);
      if (!s.ok()) {
        if (total == 0 && ShmUnusable(s)) {
          DisableShm();
          break;  // stream what the buffer holds, then the rest
        }
        ReleaseShm(std::move(b));
        return FromGrpc(s);
      }
      total += n;
      if (eof) break;
      filled = Fill(source, data, b->size(), &eof);
      if (!filled.ok()) {
        ReleaseShm(std::move(b));
        return filled.status();
      }
      if (*filled == 0) break;
    }
    if (total > 0) {
      ReleaseShm(std::move(b));
      return total;
    }
  }
  // Small input (or the shared path refused): stream the bytes already in
  // the buffer, then whatever the source still yields.
  size_t prefix = *filled;
  size_t position = 0;
  absl::StatusOr<uint64_t> written = StreamFrom(
      handle, offset,
      [&](char* out, size_t capacity) -> absl::StatusOr<size_t> {
        if (position < prefix) {
          size_t n = std::min(capacity, prefix - position);
          std::copy_n(data + position, n, out);
          position += n;
          return n;
        }
        if (eof) return size_t{0};
        return source(out, capacity);
      },
      call);
  ReleaseShm(std::move(b));
  return written;
}

absl::StatusOr<uint64_t> Client::Impl::StreamFrom(
    absl::string_view handle, uint64_t offset,
    const std::function<absl::StatusOr<size_t>(char*, size_t)>& source,
    const CallOptions& call) {
  grpc::ClientContext context;
  Prepare(call, &context);
  pb::WriteResponse response;
  std::unique_ptr<grpc::ClientWriter<pb::WriteRequest>> writer =
      objects->Write(&context, &response);
  std::string buffer(kMaxChunkBytes, '\0');
  pb::WriteRequest request;
  request.set_handle(std::string(handle));
  request.set_offset(offset);
  bool first = true;
  absl::Status local = absl::OkStatus();
  while (true) {
    // Fill the buffer completely (pipes deliver in small pieces) so every
    // message but the last carries a full chunk.
    size_t filled = 0;
    bool eof = false;
    while (filled < buffer.size()) {
      absl::StatusOr<size_t> n =
          source(buffer.data() + filled, buffer.size() - filled);
      if (!n.ok()) {
        local = n.status();
        break;
      }
      if (*n == 0) {
        eof = true;
        break;
      }
      filled += *n;
    }
    if (!local.ok()) break;
    if (filled == 0 && !first) break;  // nothing more to send
    request.set_data(buffer.data(), filled);
    if (!writer->Write(request)) break;  // stream broken: Finish says why
    request.clear_handle();
    request.clear_offset();
    first = false;
    if (eof) break;
  }
  if (!local.ok()) {
    context.TryCancel();
    (void)writer->Finish();
    return local;
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) return FromGrpc(status);
  return response.bytes_written();
}

std::unique_ptr<SharedBuffer> Client::Impl::AcquireShm(
    Client* client, const CallOptions& call) {
  if (!options.use_shared_buffers || !options.tcp_target.empty()) {
    return nullptr;
  }
  bool known;
  {
    absl::MutexLock lock(&shm_mu);
    if (shm_off) return nullptr;
    if (!shm_idle.empty()) {
      std::unique_ptr<SharedBuffer> b = std::move(shm_idle.back());
      shm_idle.pop_back();
      return b;
    }
    known = shm_socket_known;
  }
  if (!known) {
    absl::StatusOr<DaemonInfo> info = client->GetInfo(call);
    if (!info.ok()) return nullptr;  // the stream reports the error
    absl::MutexLock lock(&shm_mu);
    shm_socket_known = true;
    shm_socket = info->shared_buffer_socket;
  }
  std::string socket;
  {
    absl::MutexLock lock(&shm_mu);
    if (shm_socket.empty()) shm_off = true;
    if (shm_off) return nullptr;
    socket = shm_socket;
  }
  absl::StatusOr<SharedBuffer> b =
      SharedBuffer::Create(socket, kSharedBufferChunkBytes);
  if (!b.ok()) {
    // A limit may lift later, but a client that hits one would retry on
    // every call; streams are correct, so stay on them.
    DisableShm();
    return nullptr;
  }
  return std::make_unique<SharedBuffer>(*std::move(b));
}

void Client::Impl::ReleaseShm(std::unique_ptr<SharedBuffer> buffer) {
  absl::MutexLock lock(&shm_mu);
  if (!shm_off && shm_idle.size() < 8) shm_idle.push_back(std::move(buffer));
}

grpc::Status Client::Impl::CopyShm(bool write, absl::string_view handle,
                                   uint64_t offset, uint64_t buffer_id,
                                   uint64_t buffer_offset, uint64_t length,
                                   const CallOptions& call, uint64_t* copied) {
  grpc::ClientContext context;
  Prepare(call, &context);
  if (write) {
    pb::WriteFromBufferRequest request;
    request.set_handle(std::string(handle));
    request.set_offset(offset);
    request.set_buffer_id(buffer_id);
    request.set_buffer_offset(buffer_offset);
    request.set_length(length);
    pb::WriteFromBufferResponse r;
    grpc::Status s = objects->WriteFromBuffer(&context, request, &r);
    *copied = r.bytes_written();
    return s;
  }
  pb::ReadToBufferRequest request;
  request.set_handle(std::string(handle));
  request.set_offset(offset);
  request.set_buffer_id(buffer_id);
  request.set_buffer_offset(buffer_offset);
  request.set_length(length);
  pb::ReadToBufferResponse r;
  grpc::Status s = objects->ReadToBuffer(&context, request, &r);
  *copied = r.bytes_read();
  return s;
}

absl::StatusOr<uint64_t> Client::WriteFromBufferId(
    absl::string_view handle, uint64_t offset, uint64_t buffer_id,
    uint64_t buffer_offset, uint64_t length, const CallOptions& call) {
  uint64_t n = 0;
  grpc::Status s = impl_->CopyShm(true, handle, offset, buffer_id,
                                  buffer_offset, length, call, &n);
  if (!s.ok()) return FromGrpc(s);
  return n;
}

absl::StatusOr<uint64_t> Client::ReadToBufferId(
    absl::string_view handle, uint64_t offset, uint64_t buffer_id,
    uint64_t buffer_offset, uint64_t length, const CallOptions& call) {
  uint64_t n = 0;
  grpc::Status s = impl_->CopyShm(false, handle, offset, buffer_id,
                                  buffer_offset, length, call, &n);
  if (!s.ok()) return FromGrpc(s);
  return n;
}

absl::StatusOr<uint64_t> Client::WriteFrom(
    absl::string_view handle, uint64_t offset, const SharedBuffer& buffer,
    uint64_t buffer_offset, uint64_t length, const CallOptions& call) {
  return WriteFromBufferId(handle, offset, buffer.id(), buffer_offset, length,
                           call);
}

absl::StatusOr<uint64_t> Client::ReadInto(
    absl::string_view handle, uint64_t offset, const SharedBuffer& buffer,
    uint64_t buffer_offset, uint64_t length, const CallOptions& call) {
  return ReadToBufferId(handle, offset, buffer.id(), buffer_offset, length,
                        call);
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  impl_->self = this;
}
Client::~Client() = default;

const std::string& Client::target() const { return impl_->target; }

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(
    const ConnectOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  grpc::ChannelArguments args;
  // Read chunks are at most 1 MiB, but a List page or Stats reply of a busy
  // daemon may be large; never let the default 4 MiB cap bite.
  args.SetMaxReceiveMessageSize(64 << 20);
  // Each Client its own connection: gRPC's global subchannel pool would
  // otherwise merge clients with the same target into one HTTP/2 connection.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string uri;
  const bool any_tls = !options.tls_root_ca_file.empty() ||
                       !options.tls_cert_file.empty() ||
                       !options.tls_key_file.empty() ||
                       !options.tls_server_name_override.empty();
  if (!options.tcp_target.empty()) {
    if (!options.unix_socket.empty()) {
      return absl::InvalidArgumentError(
          "give either a unix socket or a TCP target, not both");
    }
    if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
      return absl::InvalidArgumentError(
          "a TLS client certificate needs its key and vice versa");
    }
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_root_ca_file.empty()) {
      absl::StatusOr<std::string> ca = ReadWholeFile(options.tls_root_ca_file);
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *std::move(ca);
    }
    if (!options.tls_cert_file.empty()) {
      absl::StatusOr<std::string> cert = ReadWholeFile(options.tls_cert_file);
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadWholeFile(options.tls_key_file);
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *std::move(cert);
      ssl.pem_private_key = *std::move(key);
    }
    if (!options.tls_server_name_override.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name_override);
    }
    credentials = grpc::SslCredentials(ssl);
    uri = options.tcp_target;
    impl->target = absl::StrCat("tls:", options.tcp_target);
  } else {
    if (any_tls) {
      return absl::InvalidArgumentError(
          "TLS options need a TCP target (--target HOST:PORT)");
    }
    std::string path =
        options.unix_socket.empty() ? DefaultSocketPath() : options.unix_socket;
    credentials = grpc::InsecureChannelCredentials();
    uri = absl::StrCat("unix:", path);
    impl->target = uri;
  }
  impl->channel = grpc::CreateCustomChannel(uri, credentials, args);
  if (impl->channel == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create a channel to ", impl->target));
  }
  impl->daemon = pb::DaemonService::NewStub(impl->channel);
  impl->objects = pb::ObjectService::NewStub(impl->channel);
  impl->fences = pb::FenceService::NewStub(impl->channel);
  impl->regions = pb::RegionService::NewStub(impl->channel);
  impl->faults = pb::FaultService::NewStub(impl->channel);
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

// --- DaemonService -----------------------------------------------------------

absl::Status Client::Ping(const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::PingResponse response;
  return FromGrpc(impl_->daemon->Ping(&context, pb::PingRequest(), &response));
}

absl::StatusOr<DaemonInfo> Client::GetInfo(const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::GetInfoResponse r;
  grpc::Status status =
      impl_->daemon->GetInfo(&context, pb::GetInfoRequest(), &r);
  if (!status.ok()) return FromGrpc(status);
  return FromProto(r);
}

absl::StatusOr<DaemonStats> Client::GetStats(const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::GetStatsResponse r;
  grpc::Status status =
      impl_->daemon->GetStats(&context, pb::GetStatsRequest(), &r);
  if (!status.ok()) return FromGrpc(status);
  return FromProto(r);
}

absl::StatusOr<SelfTestResult> Client::SelfTest(uint64_t bytes_per_region,
                                                bool with_faults,
                                                const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::SelfTestRequest request;
  request.set_bytes_per_region(bytes_per_region);
  request.set_with_faults(with_faults);
  pb::SelfTestResponse r;
  grpc::Status status = impl_->daemon->SelfTest(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return FromProto(r);
}

// --- ObjectService -----------------------------------------------------------

absl::StatusOr<CreateObjectResult> Client::CreateObject(
    const CreateObjectOptions& options, const CallOptions& call) {
  // The daemon checks too, but a proto3 string that is not UTF-8 never
  // reaches it: gRPC fails to parse the request (INTERNAL).
  if (!IsUtf8(options.label)) {
    return absl::InvalidArgumentError("label: not valid UTF-8");
  }
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::CreateObjectRequest request;
  request.set_size_bytes(options.size_bytes);
  if (options.placements.empty()) {
    request.add_placements("lmem");
    request.add_placements("smem");
  } else {
    for (const std::string& p : options.placements) request.add_placements(p);
  }
  request.set_require_cpu_access(options.require_cpu_access);
  request.set_pin(options.pin);
  request.set_label(options.label);
  pb::CreateObjectResponse r;
  grpc::Status status = impl_->objects->Create(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return CreateObjectResult{FromProto(r.object()), r.fence_id()};
}

absl::Status Client::DestroyObject(absl::string_view handle,
                                   const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::DestroyObjectRequest request;
  request.set_handle(std::string(handle));
  pb::DestroyObjectResponse r;
  return FromGrpc(impl_->objects->Destroy(&context, request, &r));
}

absl::StatusOr<ObjectInfo> Client::GetObject(absl::string_view handle,
                                             const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::GetObjectRequest request;
  request.set_handle(std::string(handle));
  pb::Object r;
  grpc::Status status = impl_->objects->Get(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return FromProto(r);
}

absl::StatusOr<std::vector<ObjectInfo>> Client::ListObjects(
    bool all_principals, const CallOptions& call) {
  std::vector<ObjectInfo> objects;
  std::string token;
  while (true) {
    grpc::ClientContext context;
    impl_->Prepare(call, &context);
    pb::ListObjectsRequest request;
    request.set_page_size(1000);
    request.set_page_token(token);
    request.set_all_principals(all_principals);
    pb::ListObjectsResponse r;
    grpc::Status status = impl_->objects->List(&context, request, &r);
    if (!status.ok()) return FromGrpc(status);
    for (const pb::Object& o : r.objects()) objects.push_back(FromProto(o));
    if (r.next_page_token().empty()) break;
    if (r.next_page_token() == token) {
      return absl::InternalError(
          "the daemon returned the same page token twice");
    }
    token = r.next_page_token();
  }
  return objects;
}

absl::StatusOr<uint64_t> Client::Write(absl::string_view handle,
                                       absl::Span<const uint8_t> data,
                                       uint64_t offset,
                                       const CallOptions& call) {
  size_t position = 0;
  return impl_->WriteFrom(
      handle, offset,
      [&](char* buffer, size_t capacity) -> absl::StatusOr<size_t> {
        size_t n = std::min(capacity, data.size() - position);
        std::copy_n(data.data() + position, n,
                    reinterpret_cast<uint8_t*>(buffer));
        position += n;
        return n;
      },
      call, data.size());
}

absl::StatusOr<uint64_t> Client::Write(absl::string_view handle,
                                       std::istream& in, uint64_t offset,
                                       const CallOptions& call) {
  return impl_->WriteFrom(
      handle, offset,
      [&](char* buffer, size_t capacity) -> absl::StatusOr<size_t> {
        in.read(buffer, static_cast<std::streamsize>(capacity));
        if (in.bad()) return absl::UnknownError("error reading the input");
        return static_cast<size_t>(in.gcount());
      },
      call);
}

absl::StatusOr<uint64_t> Client::WriteFromFd(absl::string_view handle, int fd,
                                             uint64_t offset,
                                             const CallOptions& call) {
  return impl_->WriteFrom(
      handle, offset,
      [fd](char* buffer, size_t capacity) -> absl::StatusOr<size_t> {
        while (true) {
          ssize_t n = ::read(fd, buffer, capacity);
          if (n >= 0) return static_cast<size_t>(n);
          if (errno == EINTR) continue;
          return absl::ErrnoToStatus(errno, "error reading the input");
        }
      },
      call);
}

absl::StatusOr<uint64_t> Client::ReadChunks(
    absl::string_view handle, uint64_t offset, uint64_t length,
    const std::function<absl::Status(absl::Span<const uint8_t>)>& sink,
    const CallOptions& call) {
  std::unique_ptr<SharedBuffer> b;
  if (length == 0 || length >= kSharedBufferThresholdBytes) {
    b = impl_->AcquireShm(this, call);
  }
  if (b != nullptr) {
    uint64_t want = length;
    bool sized = true;
    if (want == 0) {
      absl::StatusOr<ObjectInfo> object = GetObject(handle, call);
      sized = object.ok() && offset <= object->size_bytes;
      if (sized) want = object->size_bytes - offset;
    }
    if (sized && want >= kSharedBufferThresholdBytes) {
      uint64_t done = 0;
      while (done < want) {
        uint64_t piece = std::min<uint64_t>(want - done, b->size());
        uint64_t n = 0;
        grpc::Status s = impl_->CopyShm(false, handle, offset + done, b->id(),
                                        0, piece, call, &n);
        if (!s.ok()) {
          if (done == 0 && ShmUnusable(s)) break;
          impl_->ReleaseShm(std::move(b));
          return FromGrpc(s);
        }
        if (n != piece) {
          impl_->ReleaseShm(std::move(b));
          return absl::InternalError(absl::StrCat(
              "the daemon copied ", n, " bytes of ", piece, " requested"));
        }
        absl::Status local = sink(absl::MakeConstSpan(b->data(), n));
        if (!local.ok()) {
          impl_->ReleaseShm(std::move(b));
          return local;
        }
        done += n;
      }
      if (done == want) {
        impl_->ReleaseShm(std::move(b));
        return done;
      }
      impl_->DisableShm();
    } else {
      impl_->ReleaseShm(std::move(b));
    }
  }
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::ReadRequest request;
  request.set_handle(std::string(handle));
  request.set_offset(offset);
  request.set_length(length);
  std::unique_ptr<grpc::ClientReader<pb::ReadResponse>> reader =
      impl_->objects->Read(&context, request);
  pb::ReadResponse chunk;
  uint64_t expected = offset;
  absl::Status local = absl::OkStatus();
  while (reader->Read(&chunk)) {
    if (chunk.offset() != expected) {
      local = absl::InternalError(
          absl::StrCat("the daemon sent a chunk at offset ", chunk.offset(),
                       ", expected ", expected));
      break;
    }
    const std::string& data = chunk.data();
    local = sink(absl::MakeConstSpan(
        reinterpret_cast<const uint8_t*>(data.data()), data.size()));
    if (!local.ok()) break;
    expected += data.size();
  }
  if (!local.ok()) {
    context.TryCancel();
    (void)reader->Finish();
    return local;
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) return FromGrpc(status);
  if (length != 0 && expected - offset != length) {
    return absl::InternalError(absl::StrCat("the daemon sent ",
                                            expected - offset, " bytes of ",
                                            length, " requested"));
  }
  return expected - offset;
}

absl::StatusOr<std::vector<uint8_t>> Client::Read(absl::string_view handle,
                                                  uint64_t offset,
                                                  uint64_t length,
                                                  const CallOptions& call) {
  std::vector<uint8_t> bytes;
  if (length != 0) bytes.reserve(std::min<uint64_t>(length, uint64_t{1} << 30));
  absl::StatusOr<uint64_t> n = ReadChunks(
      handle, offset, length,
      [&](absl::Span<const uint8_t> chunk) {
        bytes.insert(bytes.end(), chunk.begin(), chunk.end());
        return absl::OkStatus();
      },
      call);
  if (!n.ok()) return n.status();
  return bytes;
}

absl::StatusOr<uint64_t> Client::Read(absl::string_view handle,
                                      std::ostream& out, uint64_t offset,
                                      uint64_t length,
                                      const CallOptions& call) {
  return ReadChunks(
      handle, offset, length,
      [&](absl::Span<const uint8_t> chunk) {
        out.write(reinterpret_cast<const char*>(chunk.data()),
                  static_cast<std::streamsize>(chunk.size()));
        if (!out) return absl::UnknownError("error writing the output");
        return absl::OkStatus();
      },
      call);
}

absl::StatusOr<uint64_t> Client::ReadToFd(absl::string_view handle, int fd,
                                          uint64_t offset, uint64_t length,
                                          const CallOptions& call) {
  return ReadChunks(
      handle, offset, length,
      [fd](absl::Span<const uint8_t> chunk) {
        const uint8_t* p = chunk.data();
        size_t left = chunk.size();
        while (left > 0) {
          ssize_t n = ::write(fd, p, left);
          if (n < 0) {
            if (errno == EINTR) continue;
            return absl::ErrnoToStatus(errno, "error writing the output");
          }
          p += n;
          left -= static_cast<size_t>(n);
        }
        return absl::OkStatus();
      },
      call);
}

absl::StatusOr<SubmitResult> Client::Migrate(absl::string_view handle,
                                             absl::string_view region,
                                             bool wait,
                                             const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::MigrateObjectRequest request;
  request.set_handle(std::string(handle));
  request.set_region(std::string(region));
  request.set_wait(wait);
  pb::MigrateObjectResponse r;
  grpc::Status status = impl_->objects->Migrate(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return MakeSubmitResult(r.fence_id(), r.has_fence(), r.fence());
}

absl::StatusOr<uint32_t> Client::Pin(absl::string_view handle,
                                     const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::PinObjectRequest request;
  request.set_handle(std::string(handle));
  pb::PinObjectResponse r;
  grpc::Status status = impl_->objects->Pin(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return r.pin_count();
}

absl::StatusOr<uint32_t> Client::Unpin(absl::string_view handle,
                                       const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::UnpinObjectRequest request;
  request.set_handle(std::string(handle));
  pb::UnpinObjectResponse r;
  grpc::Status status = impl_->objects->Unpin(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return r.pin_count();
}

absl::StatusOr<SubmitResult> Client::ExecFill(const FillOptions& options,
                                              const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::ExecRequest request;
  pb::FillOp* fill = request.mutable_fill();
  fill->set_handle(options.handle);
  fill->set_value(options.value);
  fill->set_offset(options.offset);
  fill->set_length(options.length);
  request.set_wait(options.wait);
  pb::ExecResponse r;
  grpc::Status status = impl_->objects->Exec(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return MakeSubmitResult(r.fence_id(), r.has_fence(), r.fence());
}

absl::StatusOr<SubmitResult> Client::ExecCopy(const CopyOptions& options,
                                              const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::ExecRequest request;
  pb::CopyOp* copy = request.mutable_copy();
  copy->set_src_handle(options.src_handle);
  copy->set_dst_handle(options.dst_handle);
  copy->set_src_offset(options.src_offset);
  copy->set_dst_offset(options.dst_offset);
  copy->set_length(options.length);
  request.set_wait(options.wait);
  pb::ExecResponse r;
  grpc::Status status = impl_->objects->Exec(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return MakeSubmitResult(r.fence_id(), r.has_fence(), r.fence());
}

absl::StatusOr<ChecksumResult> Client::ExecChecksum(
    const ChecksumOptions& options, const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::ExecRequest request;
  pb::ChecksumOp* checksum = request.mutable_checksum();
  checksum->set_handle(options.handle);
  checksum->set_offset(options.offset);
  checksum->set_length(options.length);
  request.set_wait(true);
  pb::ExecResponse r;
  grpc::Status status = impl_->objects->Exec(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  ChecksumResult result;
  result.fence_id = r.fence_id();
  result.fence = FromProto(r.fence());
  if (r.has_checksum()) result.checksum = r.checksum();
  return result;
}

// --- ObjectService batches -------------------------------------------------

absl::StatusOr<BatchResult> Client::CreateBatch(
    const std::vector<CreateObjectOptions>& entries, bool wait,
    const CallOptions& call) {
  pb::CreateBatchRequest request;
  request.mutable_entries()->Reserve(static_cast<int>(entries.size()));
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!IsUtf8(entries[i].label)) {  // gRPC could not even send it
      return absl::InvalidArgumentError(
          absl::StrCat("entries[", i, "].label: not valid UTF-8"));
    }
    ToProto(entries[i], request.add_entries());
  }
  request.set_wait(wait);
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::BatchResponse r;
  grpc::Status status = impl_->objects->CreateBatch(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return FromProto(r);
}

absl::StatusOr<BatchResult> Client::MigrateBatch(
    const std::vector<MigrateBatchEntry>& entries, absl::string_view region,
    bool wait, const CallOptions& call) {
  pb::MigrateBatchRequest request;
  request.mutable_entries()->Reserve(static_cast<int>(entries.size()));
  for (const MigrateBatchEntry& e : entries) {
    pb::MigrateBatchEntry* out = request.add_entries();
    out->set_handle(e.handle);
    out->set_region(e.region);
  }
  request.set_region(std::string(region));
  request.set_wait(wait);
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::BatchResponse r;
  grpc::Status status = impl_->objects->MigrateBatch(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return FromProto(r);
}

absl::StatusOr<BatchResult> Client::DestroyBatch(
    const std::vector<std::string>& handles, bool wait,
    const CallOptions& call) {
  pb::DestroyBatchRequest request;
  request.mutable_handles()->Reserve(static_cast<int>(handles.size()));
  for (const std::string& h : handles) request.add_handles(h);
  request.set_wait(wait);
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::BatchResponse r;
  grpc::Status status = impl_->objects->DestroyBatch(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return FromProto(r);
}

absl::StatusOr<BatchResult> Client::ExecBatch(
    const std::vector<ExecCommand>& commands, bool wait,
    const CallOptions& call) {
  pb::ExecBatchRequest request;
  request.mutable_entries()->Reserve(static_cast<int>(commands.size()));
  for (const ExecCommand& c : commands) ToProto(c, request.add_entries());
  request.set_wait(wait);
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::BatchResponse r;
  grpc::Status status = impl_->objects->ExecBatch(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return FromProto(r);
}

// --- FenceService ------------------------------------------------------------

absl::StatusOr<FenceStatus> Client::GetFence(uint64_t fence_id,
                                             const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::GetFenceRequest request;
  request.set_fence_id(fence_id);
  pb::FenceStatus r;
  grpc::Status status = impl_->fences->Get(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return FromProto(r);
}

absl::StatusOr<FenceStatus> Client::WaitFence(uint64_t fence_id,
                                              absl::Duration timeout,
                                              const CallOptions& call) {
  grpc::ClientContext context;
  pb::WaitFenceRequest request;
  request.set_fence_id(fence_id);
  absl::Duration rpc_default = absl::InfiniteDuration();
  if (timeout < kMaxDeadline && timeout >= absl::ZeroDuration()) {
    // Round up to a millisecond; at least 1 ms (0 would mean "no timeout").
    int64_t ms = absl::ToInt64Milliseconds(timeout);
    if (absl::Milliseconds(ms) < timeout) ++ms;
    ms = std::clamp<int64_t>(ms, 1, UINT32_MAX);
    request.set_timeout_ms(static_cast<uint32_t>(ms));
    rpc_default = absl::Milliseconds(ms) + kWaitGrace;
  }
  Apply(call, rpc_default, &context);
  pb::FenceStatus r;
  grpc::Status status = impl_->fences->Wait(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return FromProto(r);
}

absl::Status Client::Watch(
    const WatchOptions& options,
    const std::function<bool(const WatchEvent&)>& on_event,
    WatchCanceller* canceller, const CallOptions& call) {
  grpc::ClientContext context;
  Apply(call, absl::InfiniteDuration(), &context);
  pb::WatchRequest request;
  request.set_handle(options.handle);
  request.set_all_principals(options.all_principals);
  for (EventKind kind : options.kinds) request.add_kinds(ToProto(kind));

  std::shared_ptr<WatchCanceller::State> state;
  if (canceller != nullptr) {
    state = canceller->state_;
    absl::MutexLock lock(&state->mu);
    if (state->cancelled) return absl::OkStatus();
    state->context = &context;
  }
  std::unique_ptr<grpc::ClientReader<pb::Event>> reader =
      impl_->fences->Watch(&context, request);
  pb::Event event;
  bool stopped = false;
  while (reader->Read(&event)) {
    if (!on_event(FromProto(event))) {
      stopped = true;
      context.TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  bool cancelled = false;
  if (state != nullptr) {
    absl::MutexLock lock(&state->mu);
    state->context = nullptr;
    cancelled = state->cancelled;
  }
  if (stopped || cancelled) return absl::OkStatus();
  return FromGrpc(status);
}

// --- RegionService -----------------------------------------------------------

absl::StatusOr<std::vector<RegionInfo>> Client::ListRegions(
    const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::ListRegionsResponse r;
  grpc::Status status =
      impl_->regions->List(&context, pb::ListRegionsRequest(), &r);
  if (!status.ok()) return FromGrpc(status);
  std::vector<RegionInfo> regions;
  for (const pb::Region& region : r.regions()) {
    regions.push_back(FromProto(region));
  }
  return regions;
}

absl::StatusOr<RegionInfo> Client::GetRegion(absl::string_view name,
                                             const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::GetRegionRequest request;
  request.set_name(std::string(name));
  pb::Region r;
  grpc::Status status = impl_->regions->Get(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return FromProto(r);
}

absl::StatusOr<EvictResult> Client::EvictRegion(absl::string_view name,
                                                bool wait,
                                                const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::EvictRegionRequest request;
  request.set_name(std::string(name));
  request.set_wait(wait);
  pb::EvictRegionResponse r;
  grpc::Status status = impl_->regions->Evict(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return EvictResult{r.objects_evicted(), r.bytes_evicted(),
                     r.objects_skipped(), r.last_fence_id()};
}

// --- FaultService ------------------------------------------------------------

absl::StatusOr<FaultInfo> Client::InjectFault(const FaultSpec& spec,
                                              const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::InjectFaultRequest request;
  ToProto(spec, request.mutable_spec());
  pb::Fault r;
  grpc::Status status = impl_->faults->Inject(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return FromProto(r);
}

absl::StatusOr<uint32_t> Client::ClearFaults(uint64_t id,
                                             const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::ClearFaultsRequest request;
  if (id == 0) {
    request.set_all(true);
  } else {
    request.set_id(id);
  }
  pb::ClearFaultsResponse r;
  grpc::Status status = impl_->faults->Clear(&context, request, &r);
  if (!status.ok()) return FromGrpc(status);
  return r.cleared();
}

absl::StatusOr<std::vector<FaultInfo>> Client::ListFaults(
    const CallOptions& call) {
  grpc::ClientContext context;
  impl_->Prepare(call, &context);
  pb::ListFaultsResponse r;
  grpc::Status status =
      impl_->faults->List(&context, pb::ListFaultsRequest(), &r);
  if (!status.ok()) return FromGrpc(status);
  std::vector<FaultInfo> faults;
  for (const pb::Fault& f : r.faults()) faults.push_back(FromProto(f));
  return faults;
}

}  // namespace gpumig::client
