// gpumig client library: a C++ API over the daemon's gRPC services
// (gpumig.v1, docs/api.md), for programs that allocate and migrate buffer
// objects, test rigs that inject faults, and the gpumigctl CLI.
//
// The header exposes no gRPC or protobuf type: results are plain structs and
// errors are absl::Status. A gRPC status becomes an absl::Status with the
// same code and message, so the per-method code lists in the .proto files
// (and the table in docs/api.md) apply unchanged. Codes any call may return:
//   UNAVAILABLE        the daemon is not running, not reachable, or shutting
//                      down (reconnect with backoff).
//   DEADLINE_EXCEEDED  the call's deadline (CallOptions) passed; work already
//                      submitted goes on.
//   UNAUTHENTICATED    the daemon could not establish the caller's principal.
//   CANCELLED, INTERNAL.
//
// Thread-safety: a Client is thread-safe; any number of threads may call it
// concurrently (each call is its own RPC on a shared channel). The only
// blocking call that does not end by itself is Watch; cancel it from another
// thread with a WatchCanceller, or give it a deadline.
//
// Example:
//   auto client = gpumig::client::Client::Connect({});  // $GPUMIG_SOCKET
//   if (!client.ok()) return client.status();
//   gpumig::client::CreateObjectOptions options;
//   options.size_bytes = 1 << 20;
//   options.placements = {"lmem", "smem"};
//   auto created = (*client)->CreateObject(options);
//   if (!created.ok()) return created.status();
//   auto moved = (*client)->Migrate(created->object.handle, "smem",
//                                   /*wait=*/true);
//   if (moved.ok() && moved->fence->outcome == FenceOutcome::kUnknownState)
//     ...  // destroy and recreate from your own copy
#ifndef GPUMIG_CLIENT_GPUMIG_CLIENT_H_
#define GPUMIG_CLIENT_GPUMIG_CLIENT_H_

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/shared_buffer.h"
#include "common/region_counters.h"

namespace gpumig::client {

// The most data one Write or Read message carries (docs/api.md).
inline constexpr size_t kMaxChunkBytes = 1 << 20;

// Write/Read (and WriteFromFd/ReadToFd, Write(istream)/Read(ostream)) of at
// least this many bytes go through a shared buffer on a local socket
// (ConnectOptions::use_shared_buffers), in pieces of kSharedBufferChunkBytes.
inline constexpr uint64_t kSharedBufferThresholdBytes = 256 << 10;
inline constexpr uint64_t kSharedBufferChunkBytes = 16 << 20;

// The socket used when ConnectOptions names none: $GPUMIG_SOCKET if set and
// non-empty, else /run/gpumig/gpumig.sock.
inline constexpr const char kDefaultSocketPath[] = "/run/gpumig/gpumig.sock";
std::string DefaultSocketPath();

// ---------------------------------------------------------------------------
// Enums (mirror gpumig.v1; kUnspecified where the wire value is 0 or unknown
// to this client version).

enum class FenceState { kUnspecified, kPending, kSignaled };
enum class FenceKind { kUnspecified, kClear, kMigrate, kEvict, kExec, kArray };
enum class FenceOutcome {
  kUnspecified,  // still pending
  kBlitOk,
  kFallbackCopy,
  kFallbackClear,
  kUnknownState,
  kFailed,
  kFallbackDeviceCopy,  // the device's independent path (cuda LMEM)
  kFallbackDeviceClear,
};
enum class ObjectState { kUnspecified, kOk, kUnknown };
enum class RegionKind { kUnspecified, kLmem, kSmem };
enum class EventKind {
  kUnspecified,
  kBlitOk,
  kFallbackTaken,
  kUnknownState,
  kFailed,
  kEvicted,
  kDropped,
};
enum class FaultKind {
  kUnspecified,
  kFailBlit,
  kFailClear,
  kFailWorkAllocation,
  kBanMemcpy,
  kWedgeEngine,
  kEngineLatency,
};

// Upper-case names without the enum prefix, as the CLI prints them:
// "PENDING", "MIGRATE", "FALLBACK_COPY", "UNKNOWN", "LMEM", "FALLBACK_TAKEN",
// "FAIL_BLIT"; "UNSPECIFIED" for kUnspecified.
const char* FenceStateName(FenceState v);
const char* FenceKindName(FenceKind v);
const char* FenceOutcomeName(FenceOutcome v);
const char* ObjectStateName(ObjectState v);
const char* RegionKindName(RegionKind v);
const char* EventKindName(EventKind v);
const char* FaultKindName(FaultKind v);

// Parsers for the names above; case-insensitive, '-' and '_' equivalent.
// ParseFenceKind names an engine operation (a fault's scope): every kind but
// kArray, which runs none; it also accepts "copy" for kMigrate (the core's
// word for it).
// INVALID_ARGUMENT: an unknown name (the message lists the valid ones).
absl::StatusOr<FaultKind> ParseFaultKind(absl::string_view name);
absl::StatusOr<FenceKind> ParseFenceKind(absl::string_view name);
absl::StatusOr<EventKind> ParseEventKind(absl::string_view name);

// Every fault kind the library knows (not kUnspecified), in the wire's order.
std::vector<FaultKind> AllFaultKinds();

// ---------------------------------------------------------------------------
// Result and request types.

// A fence array's members and how they ended (gpumig.v1.FenceArray): the
// fence a batch call returns over its entries' fences.
struct FenceArrayInfo {
  std::vector<uint64_t> member_fence_ids;  // in entry order
  uint32_t members = 0;
  uint32_t blit_ok = 0;
  uint32_t fallback = 0;  // any fallback outcome (content exact)
  uint32_t unknown_state = 0;
  uint32_t failed = 0;
  uint32_t pending = 0;  // not signalled yet
  uint32_t refused = 0;  // entries refused at submission (no fence)
};

// A fence's observable state (gpumig.v1.FenceStatus).
struct FenceStatus {
  uint64_t fence_id = 0;
  FenceState state = FenceState::kUnspecified;
  FenceOutcome outcome = FenceOutcome::kUnspecified;
  // The fence's error once signalled; OK for BLIT_OK and the fallbacks.
  absl::Status error;
  // What the engine reported, even when a fallback consumed it.
  absl::Status engine_error;
  FenceKind kind = FenceKind::kUnspecified;
  std::string handle;
  std::string source_region;
  std::string target_region;
  std::string timeline;
  uint64_t seqno = 0;
  int64_t created_unix_nanos = 0;
  int64_t signaled_unix_nanos = 0;  // 0 while pending
  // FenceKind::kArray only: the members and their outcome counts.
  std::optional<FenceArrayInfo> array;

  bool signaled() const { return state == FenceState::kSignaled; }
};

// A buffer object (gpumig.v1.Object).
struct ObjectInfo {
  std::string handle;
  uint64_t size_bytes = 0;
  std::vector<std::string> placements;
  std::string region;
  ObjectState state = ObjectState::kUnspecified;
  std::string unknown_reason;
  uint64_t unknown_fence_id = 0;
  uint32_t pin_count = 0;
  std::string label;
  std::string owner;
  uint64_t move_fence_id = 0;
  uint64_t last_fence_id = 0;
  int64_t created_unix_nanos = 0;
  bool require_cpu_access = false;
  bool cpu_accessible = false;
};

struct CreateObjectOptions {
  // > 0, a multiple of 4096.
  uint64_t size_bytes = 0;
  // Region names, most preferred first; empty: {"lmem", "smem"}.
  std::vector<std::string> placements;
  bool require_cpu_access = false;
  bool pin = false;
  std::string label;
};

struct CreateObjectResult {
  ObjectInfo object;
  // The fence of the clear of the new blocks.
  uint64_t fence_id = 0;
};

// A submitted operation: its fence, and its status when the call waited.
struct SubmitResult {
  uint64_t fence_id = 0;
  std::optional<FenceStatus> fence;  // set when the call waited
};

// ExecFill: bytes [offset, offset + length) of `handle` := value.
struct FillOptions {
  std::string handle;
  uint32_t value = 0;  // 0..255
  uint64_t offset = 0;
  uint64_t length = 0;  // 0: to the end of the object
  bool wait = false;
};

// ExecCopy: dst[dst_offset, +length) := src[src_offset, +length).
struct CopyOptions {
  std::string src_handle;
  std::string dst_handle;
  uint64_t src_offset = 0;
  uint64_t dst_offset = 0;
  uint64_t length = 0;  // 0: to the end of src
  bool wait = false;
};

// ExecChecksum: FNV-1a 64 of bytes [offset, offset + length) (always waits).
struct ChecksumOptions {
  std::string handle;
  uint64_t offset = 0;
  uint64_t length = 0;  // 0: to the end of the object
};

struct ChecksumResult {
  uint64_t fence_id = 0;
  FenceStatus fence;
  // Set iff fence.outcome is kBlitOk.
  std::optional<uint64_t> checksum;
};

// Batches (objects.proto "Batches"): 1 to kMaxBatchEntries entries per call.
// A malformed batch fails whole (INVALID_ARGUMENT naming "entries[i]...");
// otherwise the call is OK and each entry has its own status, in request
// order.
inline constexpr size_t kMaxBatchEntries = 4096;

// How one entry of a batch went (gpumig.v1.BatchResult).
struct BatchEntryResult {
  // What the entry's single call would have returned: OK if submitted;
  // NOT_FOUND, PERMISSION_DENIED ("permission denied"), DATA_LOSS,
  // RESOURCE_EXHAUSTED, ... otherwise. The fence says how it ended.
  absl::Status status;
  // The entry's object: the new one (CreateBatch), else as given (ExecBatch:
  // the object acted on, a Copy's destination).
  std::string handle;
  // The entry's fence, a member of the array; 0 if it failed, and for
  // DestroyBatch.
  uint64_t fence_id = 0;
  std::optional<ObjectInfo> object;  // CreateBatch, on success
  std::optional<uint64_t> checksum;  // ExecBatch Checksums ending BLIT_OK
};

// The reply of every batch call.
struct BatchResult {
  std::vector<BatchEntryResult> entries;  // one per entry, in order
  uint64_t fence_id = 0;                  // the array (FenceKind::kArray)
  std::optional<FenceStatus> fence;       // set when the call waited
  uint32_t succeeded = 0;                 // entries with an OK status
  uint32_t failed = 0;                    // the others
};

struct MigrateBatchEntry {
  std::string handle;
  // A region from the object's placements; empty: the call's region.
  std::string region;
};

// One ExecBatch command; its `wait` must be false (only the batch waits).
using ExecCommand = std::variant<FillOptions, CopyOptions, ChecksumOptions>;

// A region's cumulative counters (gpumig.v1.RegionCounters): the one struct
// of common/region_counters.h, which the daemon fills too.
using RegionCounters = ::gpumig::RegionCounters;

// A memory region and its occupancy (gpumig.v1.Region).
struct RegionInfo {
  std::string name;
  RegionKind kind = RegionKind::kUnspecified;
  uint64_t size_bytes = 0;
  uint64_t aperture_bytes = 0;
  uint64_t allocated_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t largest_free_block_bytes = 0;
  uint64_t aperture_allocated_bytes = 0;
  uint64_t min_block_bytes = 0;
  uint64_t objects = 0;
  uint64_t unknown_state_objects = 0;
  RegionCounters counters;
  uint64_t eviction_timeline_seqno = 0;
  uint64_t last_eviction_fence_id = 0;
};

struct EvictResult {
  uint64_t objects_evicted = 0;
  uint64_t bytes_evicted = 0;
  uint64_t objects_skipped = 0;
  uint64_t last_fence_id = 0;  // 0 if nothing was evicted
};

// A fault to inject. Exactly one trigger: next_n > 0, probability, or always.
struct FaultSpec {
  FaultKind kind = FaultKind::kUnspecified;
  uint32_t next_n = 0;
  std::optional<double> probability;  // in [0, 1]
  uint64_t seed = 0;                  // with probability; 0: daemon picks
  bool always = false;
  std::string region;                      // "" : every region
  FenceKind op = FenceKind::kUnspecified;  // kUnspecified: every kind
  uint32_t latency_us = 0;                 // kEngineLatency only
};

// An armed fault and its counts (gpumig.v1.Fault).
struct FaultInfo {
  uint64_t id = 0;
  FaultSpec spec;  // as armed, with a daemon-picked seed filled in
  uint64_t matched_count = 0;
  uint64_t fired_count = 0;
  bool exhausted = false;
  int64_t created_unix_nanos = 0;
};

struct DrmDeviceInfo {
  std::string driver;
  std::string bus_id;
  std::string render_node;
  std::string primary_node;
  uint32_t pci_vendor_id = 0;
  uint32_t pci_device_id = 0;
};

struct PrincipalInfo {
  std::string name;
  uint32_t uid = 0;
  bool is_admin = false;
};

struct Limits {
  uint32_t max_chunk_bytes = 0;
  uint32_t page_bytes = 0;
  uint32_t max_list_page_size = 0;
};

struct DaemonInfo {
  std::string version;
  std::string backend;
  std::string device_name;
  std::vector<DrmDeviceInfo> drm_devices;
  int64_t start_unix_nanos = 0;
  int64_t uptime_nanos = 0;
  bool fault_injection_enabled = false;
  PrincipalInfo caller;
  Limits limits;
  // The shared-buffer registration socket; empty: none.
  std::string shared_buffer_socket;
};

// gpumig.v1.SharedBufferStats.
struct SharedBufferStats {
  bool enabled = false;
  uint64_t buffers = 0;
  uint64_t bytes = 0;
  uint64_t connections = 0;
  uint64_t registrations = 0;
  uint64_t rejections = 0;
  uint64_t unregistrations = 0;
  uint64_t bytes_written = 0;
  uint64_t bytes_read = 0;
  uint64_t max_buffers_per_principal = 0;
  uint64_t max_bytes_per_principal = 0;
  uint64_t max_total_bytes = 0;
};

struct RpcMethodStats {
  std::string method;
  uint64_t calls = 0;
  uint64_t errors = 0;
};

struct DaemonStats {
  std::vector<RpcMethodStats> rpcs;
  uint64_t objects = 0;
  uint64_t unknown_state_objects = 0;
  uint64_t fences_pending = 0;
  uint64_t fence_history_size = 0;
  uint64_t fences_created = 0;
  uint64_t watchers = 0;
  bool engine_wedged = false;
  std::vector<RegionInfo> regions;
  SharedBufferStats shared_buffers;
};

struct SelfTestResult {
  bool passed = false;
  uint64_t canary_bytes_written = 0;
  uint64_t objects_checked = 0;
  uint64_t violations = 0;
  std::vector<std::string> details;
};

struct WatchOptions {
  // Only this object's events; empty: every object of the caller.
  std::string handle;
  // Every principal's objects (admins only; ignored with handle).
  bool all_principals = false;
  // Only these kinds; empty: all. DROPPED is always sent.
  std::vector<EventKind> kinds;
};

// One event of a Watch stream.
struct WatchEvent {
  uint64_t event_seqno = 0;
  EventKind kind = EventKind::kUnspecified;
  std::optional<FenceStatus> fence;  // unset for DROPPED
  std::string handle;
  std::string region;
  int64_t time_unix_nanos = 0;
  uint64_t dropped_events = 0;  // DROPPED only
};

// Per-call options.
struct CallOptions {
  // How long the call may take. Zero: the client's default
  // (ConnectOptions::default_timeout; for Watch: no deadline; for WaitFence:
  // the wait's own timeout plus a grace period). absl::InfiniteDuration():
  // no deadline.
  absl::Duration timeout = absl::ZeroDuration();
  // Queue the call until the channel is ready (up to the deadline) instead of
  // failing at once with UNAVAILABLE when the daemon is not reachable.
  bool wait_for_ready = false;
};

// How to reach the daemon.
struct ConnectOptions {
  // Unix socket path. Empty (and no tcp_target): DefaultSocketPath().
  std::string unix_socket;
  // "host:port": connect over TCP with TLS instead of the socket.
  std::string tcp_target;
  // TLS files (PEM) for tcp_target. Root CA empty: the system roots. Client
  // certificate and key: both or neither (mutual TLS).
  std::string tls_root_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // Override the name checked against the server certificate (tests).
  std::string tls_server_name_override;
  // The deadline of every call whose CallOptions give none.
  absl::Duration default_timeout = absl::Seconds(30);
  // On a unix socket, move Write/Read ranges of at least
  // kSharedBufferThresholdBytes through shared buffers the client registers
  // (and caches) itself. Falls back to streams, silently, when the daemon has
  // no shared-buffer socket, refuses the registration, or answers
  // FAILED_PRECONDITION/UNIMPLEMENTED before any byte moved. Never on TCP.
  bool use_shared_buffers = true;
};

// Cancels a running Watch from any thread. Create it before calling Watch and
// pass it in; Cancel() may be called before, during or after the Watch (before:
// the Watch returns at once). Thread-safe; copyable (copies share state).
class WatchCanceller {
 public:
  WatchCanceller();
  void Cancel();
  bool cancelled() const;

 private:
  friend class Client;
  struct State;
  std::shared_ptr<State> state_;
};

// A connection to gpumigd. Create with Connect(); thread-safe.
class Client {
 public:
  // Builds a channel to the daemon. Does not contact it: an unreachable
  // daemon shows as UNAVAILABLE on the first call (use Ping to check).
  //
  // INVALID_ARGUMENT: both unix_socket and tcp_target; TLS files without
  //   tcp_target; only one of cert and key.
  // NOT_FOUND / PERMISSION_DENIED / ...: a TLS file cannot be read.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const ConnectOptions& options);

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // What this client connects to, e.g. "unix:/run/gpumig/gpumig.sock" or
  // "tls:host:443"; for messages.
  const std::string& target() const;

  // --- DaemonService
  absl::Status Ping(const CallOptions& call = {});
  absl::StatusOr<DaemonInfo> GetInfo(const CallOptions& call = {});
  absl::StatusOr<DaemonStats> GetStats(const CallOptions& call = {});
  // Admins only. bytes_per_region 0: the daemon's default.
  absl::StatusOr<SelfTestResult> SelfTest(uint64_t bytes_per_region,
                                          bool with_faults,
                                          const CallOptions& call = {});

  // --- ObjectService
  absl::StatusOr<CreateObjectResult> CreateObject(
      const CreateObjectOptions& options, const CallOptions& call = {});
  absl::Status DestroyObject(absl::string_view handle,
                             const CallOptions& call = {});
  absl::StatusOr<ObjectInfo> GetObject(absl::string_view handle,
                                       const CallOptions& call = {});
  // Every object of the caller (all principals: admins only), in creation
  // order; fetches every page. The deadline applies to each page.
  absl::StatusOr<std::vector<ObjectInfo>> ListObjects(
      bool all_principals = false, const CallOptions& call = {});

  // Writes `data` at `offset`, streamed in chunks of at most kMaxChunkBytes.
  // Returns the bytes the daemon wrote. Not atomic (a prefix may be written
  // on error). OUT_OF_RANGE, FAILED_PRECONDITION, DATA_LOSS, ...: see
  // objects.proto.
  absl::StatusOr<uint64_t> Write(absl::string_view handle,
                                 absl::Span<const uint8_t> data,
                                 uint64_t offset = 0,
                                 const CallOptions& call = {});
  // Writes everything `in` yields until EOF. A read error of `in` cancels the
  // RPC and returns UNKNOWN naming the local error.
  absl::StatusOr<uint64_t> Write(absl::string_view handle, std::istream& in,
                                 uint64_t offset = 0,
                                 const CallOptions& call = {});
  // Writes everything read from file descriptor `fd` until EOF (a pipe, a
  // file, stdin). The fd is not closed. A read error: as above.
  absl::StatusOr<uint64_t> WriteFromFd(absl::string_view handle, int fd,
                                       uint64_t offset = 0,
                                       const CallOptions& call = {});

  // Reads [offset, offset + length) (length 0: to the end) into memory.
  absl::StatusOr<std::vector<uint8_t>> Read(absl::string_view handle,
                                            uint64_t offset = 0,
                                            uint64_t length = 0,
                                            const CallOptions& call = {});
  // Reads into `out` (binary); returns the bytes delivered. A failed write to
  // `out` cancels the RPC.
  absl::StatusOr<uint64_t> Read(absl::string_view handle, std::ostream& out,
                                uint64_t offset = 0, uint64_t length = 0,
                                const CallOptions& call = {});
  // Reads into file descriptor `fd` (not closed); returns the bytes written.
  absl::StatusOr<uint64_t> ReadToFd(absl::string_view handle, int fd,
                                    uint64_t offset = 0, uint64_t length = 0,
                                    const CallOptions& call = {});
  // The general form: `sink` receives each chunk in order; a non-OK return
  // cancels the RPC and becomes the result.
  absl::StatusOr<uint64_t> ReadChunks(
      absl::string_view handle, uint64_t offset, uint64_t length,
      const std::function<absl::Status(absl::Span<const uint8_t>)>& sink,
      const CallOptions& call = {});

  // Shared buffers (see shared_buffer.h): copy `length` bytes between
  // buffer[buffer_offset, +length) and the object at `offset`, by one memcpy
  // in the daemon. Returns the bytes copied. Codes: objects.proto
  // WriteFromBuffer/ReadToBuffer (FAILED_PRECONDITION on TCP, NOT_FOUND for a
  // buffer not registered, OUT_OF_RANGE, DATA_LOSS, ...).
  absl::StatusOr<uint64_t> WriteFrom(absl::string_view handle, uint64_t offset,
                                     const SharedBuffer& buffer,
                                     uint64_t buffer_offset, uint64_t length,
                                     const CallOptions& call = {});
  absl::StatusOr<uint64_t> ReadInto(absl::string_view handle, uint64_t offset,
                                    const SharedBuffer& buffer,
                                    uint64_t buffer_offset, uint64_t length,
                                    const CallOptions& call = {});
  // The same by buffer id (a buffer registered by other means).
  absl::StatusOr<uint64_t> WriteFromBufferId(
      absl::string_view handle, uint64_t offset, uint64_t buffer_id,
      uint64_t buffer_offset, uint64_t length, const CallOptions& call = {});
  absl::StatusOr<uint64_t> ReadToBufferId(absl::string_view handle,
                                          uint64_t offset, uint64_t buffer_id,
                                          uint64_t buffer_offset,
                                          uint64_t length,
                                          const CallOptions& call = {});

  // Moves the object to `region`. With `wait`, returns once the migration
  // fence has signalled and reports it in SubmitResult::fence (the fence's
  // outcome says how the move went; the call reports submission).
  absl::StatusOr<SubmitResult> Migrate(absl::string_view handle,
                                       absl::string_view region,
                                       bool wait = false,
                                       const CallOptions& call = {});
  // Returns the pin count after the change.
  absl::StatusOr<uint32_t> Pin(absl::string_view handle,
                               const CallOptions& call = {});
  absl::StatusOr<uint32_t> Unpin(absl::string_view handle,
                                 const CallOptions& call = {});

  absl::StatusOr<SubmitResult> ExecFill(const FillOptions& options,
                                        const CallOptions& call = {});
  absl::StatusOr<SubmitResult> ExecCopy(const CopyOptions& options,
                                        const CallOptions& call = {});
  absl::StatusOr<ChecksumResult> ExecChecksum(const ChecksumOptions& options,
                                              const CallOptions& call = {});

  // Batches: one RPC for many operations and one fence array over them
  // (objects.proto; the codes of each entry are its single call's). With
  // `wait`, the call returns once the array has signalled, in
  // BatchResult::fence. Call errors: INVALID_ARGUMENT for a malformed batch
  // (nothing changed), CANCELLED / DEADLINE_EXCEEDED (submitted entries go
  // on), UNAVAILABLE.
  //
  // Creates one object per entry (placements empty: {"lmem", "smem"}).
  absl::StatusOr<BatchResult> CreateBatch(
      const std::vector<CreateObjectOptions>& entries, bool wait = false,
      const CallOptions& call = {});
  // Moves each entry's object to its region, or to `region` for entries
  // naming none; every handle at most once.
  absl::StatusOr<BatchResult> MigrateBatch(
      const std::vector<MigrateBatchEntry>& entries, absl::string_view region,
      bool wait = false, const CallOptions& call = {});
  // Destroys each handle's object (all different). The array signals once
  // nothing is in flight on them any more.
  absl::StatusOr<BatchResult> DestroyBatch(
      const std::vector<std::string>& handles, bool wait = false,
      const CallOptions& call = {});
  // Runs each command on the copy engine in request order. A batch with a
  // Checksum always waits (BatchEntryResult::checksum).
  absl::StatusOr<BatchResult> ExecBatch(
      const std::vector<ExecCommand>& commands, bool wait = false,
      const CallOptions& call = {});

  // --- FenceService
  absl::StatusOr<FenceStatus> GetFence(uint64_t fence_id,
                                       const CallOptions& call = {});
  // Blocks until the fence signals or `timeout` passes (DEADLINE_EXCEEDED).
  // The call is OK whatever the fence's outcome. timeout is rounded up to a
  // millisecond; absl::InfiniteDuration(): no timeout of its own (then the
  // call's deadline bounds it, none by default).
  absl::StatusOr<FenceStatus> WaitFence(uint64_t fence_id,
                                        absl::Duration timeout,
                                        const CallOptions& call = {});
  // Streams events to `on_event` until it returns false, the stream ends, the
  // call's deadline passes, or `canceller` (optional) is cancelled. Returns
  // OK when on_event stopped it, when cancelled, or when the daemon ended the
  // stream OK (the watched object was destroyed); otherwise the stream's
  // error (UNAVAILABLE at daemon shutdown, DEADLINE_EXCEEDED, NOT_FOUND,
  // PERMISSION_DENIED, RESOURCE_EXHAUSTED, ...). on_event runs on the calling
  // thread.
  absl::Status Watch(const WatchOptions& options,
                     const std::function<bool(const WatchEvent&)>& on_event,
                     WatchCanceller* canceller = nullptr,
                     const CallOptions& call = {});

  // --- RegionService
  absl::StatusOr<std::vector<RegionInfo>> ListRegions(
      const CallOptions& call = {});
  absl::StatusOr<RegionInfo> GetRegion(absl::string_view name,
                                       const CallOptions& call = {});
  // Admins only: evicts every evictable object of the region. With `wait`,
  // returns once the last eviction fence has signalled.
  absl::StatusOr<EvictResult> EvictRegion(absl::string_view name,
                                          bool wait = false,
                                          const CallOptions& call = {});

  // --- FaultService (admins only; FAILED_PRECONDITION when disabled)
  absl::StatusOr<FaultInfo> InjectFault(const FaultSpec& spec,
                                        const CallOptions& call = {});
  // Clears one fault (id != 0) or, with id 0, every fault. Returns how many.
  absl::StatusOr<uint32_t> ClearFaults(uint64_t id,
                                       const CallOptions& call = {});
  absl::StatusOr<std::vector<FaultInfo>> ListFaults(
      const CallOptions& call = {});

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gpumig::client

#endif  // GPUMIG_CLIENT_GPUMIG_CLIENT_H_
