#include "tests/fuzz/service_harness.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "daemon/config/config.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/text_format.h"
#include "gpumig/v1/daemon.grpc.pb.h"
#include "gpumig/v1/faults.grpc.pb.h"
#include "gpumig/v1/fences.grpc.pb.h"
#include "gpumig/v1/objects.grpc.pb.h"
#include "gpumig/v1/regions.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace gpumig::fuzz {
namespace {

namespace v1 = ::gpumig::v1;

// Limits that keep one input fast.
constexpr int kMaxActions = 64;
constexpr int kMaxWriteMessages = 8;
constexpr int kRpcMillis = 2000;
constexpr int kWatchMillis = 20;
constexpr uint32_t kMaxWaitMillis = 50;
constexpr uint32_t kMaxLatencyUs = 2000;
constexpr uint64_t kMaxSelfTestBytes = 256 << 10;
constexpr uint64_t kDrainCheckEvery = 256;

constexpr char kConfig[] = R"pb(
  backend: "sim"
  regions { name: "lmem" kind: LMEM size: "8MiB" aperture: "2MiB" }
  regions { name: "smem" kind: SMEM size: "16MiB" }
  enable_fault_injection: true
  log_level: "error"
  fence_history: 256
  shutdown_grace_ms: 1000
)pb";

namespace pb = ::google::protobuf;

[[noreturn]] void Die(const std::string& what);

// The input schema (service_harness.h), built at run time on top of the
// generated gpumig.v1 descriptors. Field numbers group the services:
// 1-9 DaemonService, 10-19 ObjectService, 20-29 FenceService, 30-39
// RegionService, 40-49 FaultService.
enum ActionField {
  kPing = 1,
  kGetInfo = 2,
  kGetStats = 3,
  kSelfTest = 4,
  kCreate = 10,
  kDestroy = 11,
  kGetObject = 12,
  kListObjects = 13,
  kWrite = 14,
  kRead = 15,
  kMigrate = 16,
  kPin = 17,
  kUnpin = 18,
  kExec = 19,
  kGetFence = 20,
  kWaitFence = 21,
  kWatch = 22,
  kListRegions = 30,
  kGetRegion = 31,
  kEvict = 32,
  kInjectFault = 40,
  kClearFaults = 41,
  kListFaults = 42,
  // ObjectService's batches (10-19 are taken).
  kCreateBatch = 50,
  kMigrateBatch = 51,
  kDestroyBatch = 52,
  kExecBatch = 53,
};

struct FieldSpec {
  const char* name;
  int number;
  const char* type;
};

constexpr FieldSpec kActionFields[] = {
    {"ping", kPing, ".gpumig.v1.PingRequest"},
    {"get_info", kGetInfo, ".gpumig.v1.GetInfoRequest"},
    {"get_stats", kGetStats, ".gpumig.v1.GetStatsRequest"},
    {"self_test", kSelfTest, ".gpumig.v1.SelfTestRequest"},
    {"create", kCreate, ".gpumig.v1.CreateObjectRequest"},
    {"destroy", kDestroy, ".gpumig.v1.DestroyObjectRequest"},
    {"get_object", kGetObject, ".gpumig.v1.GetObjectRequest"},
    {"list_objects", kListObjects, ".gpumig.v1.ListObjectsRequest"},
    {"write", kWrite, ".gpumig.fuzz.WriteStream"},
    {"read", kRead, ".gpumig.v1.ReadRequest"},
    {"migrate", kMigrate, ".gpumig.v1.MigrateObjectRequest"},
    {"pin", kPin, ".gpumig.v1.PinObjectRequest"},
    {"unpin", kUnpin, ".gpumig.v1.UnpinObjectRequest"},
    {"exec", kExec, ".gpumig.v1.ExecRequest"},
    {"get_fence", kGetFence, ".gpumig.v1.GetFenceRequest"},
    {"wait_fence", kWaitFence, ".gpumig.v1.WaitFenceRequest"},
    {"watch", kWatch, ".gpumig.v1.WatchRequest"},
    {"list_regions", kListRegions, ".gpumig.v1.ListRegionsRequest"},
    {"get_region", kGetRegion, ".gpumig.v1.GetRegionRequest"},
    {"evict", kEvict, ".gpumig.v1.EvictRegionRequest"},
    {"inject_fault", kInjectFault, ".gpumig.v1.InjectFaultRequest"},
    {"clear_faults", kClearFaults, ".gpumig.v1.ClearFaultsRequest"},
    {"list_faults", kListFaults, ".gpumig.v1.ListFaultsRequest"},
    {"create_batch", kCreateBatch, ".gpumig.v1.CreateBatchRequest"},
    {"migrate_batch", kMigrateBatch, ".gpumig.v1.MigrateBatchRequest"},
    {"destroy_batch", kDestroyBatch, ".gpumig.v1.DestroyBatchRequest"},
    {"exec_batch", kExecBatch, ".gpumig.v1.ExecBatchRequest"},
};

void AddField(pb::DescriptorProto* msg, const char* name, int number,
              const char* type, pb::FieldDescriptorProto::Label label) {
  pb::FieldDescriptorProto* f = msg->add_field();
  f->set_name(name);
  f->set_number(number);
  f->set_label(label);
  f->set_type(pb::FieldDescriptorProto::TYPE_MESSAGE);
  f->set_type_name(type);
}

struct Schema {
  pb::DescriptorPool* pool = nullptr;
  pb::DynamicMessageFactory* factory = nullptr;
  const pb::Descriptor* actions = nullptr;
  const pb::OneofDescriptor* action_oneof = nullptr;
};

// Leaked on purpose: the pool must outlive every message built from it.
const Schema& GetSchema() {
  static const Schema* schema = [] {
    // Make sure the generated descriptors are registered.
    (void)v1::PingRequest::descriptor();
    (void)v1::ObjectService::service_full_name();
    pb::FileDescriptorProto file;
    file.set_name("gpumig/fuzz/fuzz_actions.proto");
    file.set_package("gpumig.fuzz");
    file.set_syntax("proto3");
    for (const char* dep : {"gpumig/v1/daemon.proto", "gpumig/v1/faults.proto",
                            "gpumig/v1/fences.proto", "gpumig/v1/objects.proto",
                            "gpumig/v1/regions.proto"}) {
      file.add_dependency(dep);
    }
    pb::DescriptorProto* write = file.add_message_type();
    write->set_name("WriteStream");
    AddField(write, "messages", 1, ".gpumig.v1.WriteRequest",
             pb::FieldDescriptorProto::LABEL_REPEATED);
    pb::DescriptorProto* action = file.add_message_type();
    action->set_name("Action");
    action->add_oneof_decl()->set_name("action");
    for (const FieldSpec& f : kActionFields) {
      AddField(action, f.name, f.number, f.type,
               pb::FieldDescriptorProto::LABEL_OPTIONAL);
      action->mutable_field(action->field_size() - 1)->set_oneof_index(0);
    }
    pb::DescriptorProto* actions = file.add_message_type();
    actions->set_name("Actions");
    AddField(actions, "actions", 1, ".gpumig.fuzz.Action",
             pb::FieldDescriptorProto::LABEL_REPEATED);

    auto* s = new Schema;
    s->pool = new pb::DescriptorPool(pb::DescriptorPool::generated_pool());
    const pb::FileDescriptor* fd = s->pool->BuildFile(file);
    if (fd == nullptr) Die("cannot build the fuzz input schema");
    s->factory = new pb::DynamicMessageFactory(s->pool);
    s->factory->SetDelegateToGeneratedFactory(true);
    s->actions = fd->FindMessageTypeByName("Actions");
    s->action_oneof =
        fd->FindMessageTypeByName("Action")->FindOneofByName("action");
    return s;
  }();
  return *schema;
}

// A sub-message of an input as its generated type.
template <typename T>
T As(const pb::Message& m) {
  T t;
  t.CopyFrom(m);
  return t;
}

struct Harness {
  std::string dir;
  std::string socket;
  std::unique_ptr<daemon::Daemon> daemon;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::DaemonService::Stub> daemons;
  std::unique_ptr<v1::ObjectService::Stub> objects;
  std::unique_ptr<v1::FenceService::Stub> fences;
  std::unique_ptr<v1::RegionService::Stub> regions;
  std::unique_ptr<v1::FaultService::Stub> faults;
  uint64_t inputs = 0;
};

Harness* harness = nullptr;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "gpumig service fuzzer: ORACLE VIOLATION: %s\n",
               what.c_str());
  std::fflush(stderr);
  std::abort();
}

Harness& GetHarness() {
  if (harness != nullptr) return *harness;
  auto h = std::make_unique<Harness>();
  char tmpl[] = "/tmp/gpumig-fuzz.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Die("mkdtemp failed");
  h->dir = tmpl;
  h->socket = h->dir + "/gpumig.sock";
  // libFuzzer exits without ShutdownServiceHarness: remove the socket and
  // its directory then too (the daemon's listener leaves the file).
  static const std::string* exit_dir = new std::string(h->dir);
  std::atexit([] {
    unlink((*exit_dir + "/gpumig.sock").c_str());
    rmdir(exit_dir->c_str());
  });
  daemon::SetLogLevel(daemon::LogLevel::kError);
  absl::StatusOr<daemon::DaemonConfig> parsed =
      daemon::ParseConfigText(kConfig, "service_harness");
  if (!parsed.ok()) Die(parsed.status().ToString());
  parsed->mutable_listeners()->mutable_unix_socket()->set_path(h->socket);
  absl::StatusOr<daemon::Config> config = daemon::ValidateConfig(*parsed);
  if (!config.ok()) Die(config.status().ToString());
  absl::StatusOr<std::unique_ptr<daemon::Daemon>> d =
      daemon::Daemon::Start(*config);
  if (!d.ok()) Die("cannot start gpumigd: " + d.status().ToString());
  h->daemon = *std::move(d);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  h->channel = grpc::CreateCustomChannel(
      "unix:" + h->socket, grpc::InsecureChannelCredentials(), args);
  h->daemons = v1::DaemonService::NewStub(h->channel);
  h->objects = v1::ObjectService::NewStub(h->channel);
  h->fences = v1::FenceService::NewStub(h->channel);
  h->regions = v1::RegionService::NewStub(h->channel);
  h->faults = v1::FaultService::NewStub(h->channel);
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::PingResponse pong;
  grpc::Status s = h->daemons->Ping(&ctx, v1::PingRequest(), &pong);
  if (!s.ok()) Die("in-process gpumigd does not answer: " + s.error_message());
  harness = h.release();
  return *harness;
}

void SetDeadline(grpc::ClientContext* ctx, int millis) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(millis));
}

// Whether the request being sent survives serialization: proto3 string
// fields with invalid UTF-8 do not parse, and gRPC itself then answers
// INTERNAL before the daemon sees the call.
bool request_wire_ok = true;

bool RoundTrips(const pb::Message& m) {
  std::string bytes;
  if (!m.SerializeToString(&bytes)) return false;
  std::unique_ptr<pb::Message> copy(m.New());
  return copy->ParseFromString(bytes);
}

// The API's status set (docs/api.md). INTERNAL means "daemon bug" except
// where a method documents it or gRPC could not parse the request. (An
// engine transfer failing under Read or Write is ABORTED, not INTERNAL.)
void CheckStatus(const char* method, const grpc::Status& s,
                 bool internal_documented) {
  switch (s.error_code()) {
    case grpc::StatusCode::UNKNOWN:
      Die(absl::StrCat(method, " returned UNKNOWN: ", s.error_message()));
    case grpc::StatusCode::UNAVAILABLE:
      Die(absl::StrCat(method,
                       " returned UNAVAILABLE (the daemon is not "
                       "shutting down): ",
                       s.error_message()));
    case grpc::StatusCode::UNIMPLEMENTED:
      Die(absl::StrCat(method, " returned UNIMPLEMENTED: ", s.error_message()));
    case grpc::StatusCode::INTERNAL:
      if (!internal_documented && request_wire_ok) {
        Die(absl::StrCat(method, " returned INTERNAL: ", s.error_message()));
      }
      break;
    default:
      break;
  }
}

// What one input created, for references.
struct InputState {
  std::vector<std::string> handles;
  std::vector<uint64_t> fences;
  std::vector<uint64_t> faults;

  std::string Handle(const std::string& h) const {
    if (h.size() < 2 || h[0] != '#' || handles.empty()) return h;
    uint64_t k = 0;
    if (!absl::SimpleAtoi(absl::string_view(h).substr(1), &k)) return h;
    return handles[k % handles.size()];
  }
  uint64_t Fence(uint64_t id) const {
    if (id == 0 || id > 63 || fences.empty()) return id;
    return fences[(id - 1) % fences.size()];
  }
  uint64_t Fault(uint64_t id) const {
    if (id == 0 || id > 63 || faults.empty()) return id;
    return faults[(id - 1) % faults.size()];
  }
  void AddFence(uint64_t id) {
    if (id != 0 && fences.size() < 256) fences.push_back(id);
  }
};

// A batch of n entries runs at most kMaxBatchFuzzEntries of them (a slow
// input teaches nothing), except that a batch over the RPC's maximum stays
// one over it (4097 entries), so the refusal is still exercised.
constexpr int kMaxBatchFuzzEntries = 64;
template <typename Repeated>
void ClampBatch(Repeated* entries) {
  const int n = entries->size();
  const int keep = n > 4096 ? 4097 : std::min(n, kMaxBatchFuzzEntries);
  while (entries->size() > keep) entries->RemoveLast();
}

void ResolveExec(const InputState& st, v1::ExecRequest* req) {
  if (req->has_fill()) {
    req->mutable_fill()->set_handle(st.Handle(req->fill().handle()));
  } else if (req->has_copy()) {
    req->mutable_copy()->set_src_handle(st.Handle(req->copy().src_handle()));
    req->mutable_copy()->set_dst_handle(st.Handle(req->copy().dst_handle()));
  } else if (req->has_checksum()) {
    req->mutable_checksum()->set_handle(st.Handle(req->checksum().handle()));
  }
}

// The batch oracles: one result per entry, in order; the counts add up; a
// member fence only on a submitted entry; each entry's code one its single
// RPC documents; the array always named.
void CheckBatch(const char* method, int entries, const grpc::Status& s,
                const v1::BatchResponse& r, InputState* st) {
  CheckStatus(method, s, false);
  if (!s.ok()) return;
  if (r.results_size() != entries || r.fence_id() == 0 ||
      r.succeeded() + r.failed() != static_cast<uint32_t>(entries)) {
    Die(absl::StrCat(method, ": ", entries, " entries but ", r.results_size(),
                     " results, ", r.succeeded(), "+", r.failed(),
                     " counted, array ", r.fence_id()));
  }
  uint32_t ok = 0;
  for (const v1::BatchResult& e : r.results()) {
    switch (static_cast<grpc::StatusCode>(e.error_code())) {
      case grpc::StatusCode::OK:
        ++ok;
        break;
      case grpc::StatusCode::UNKNOWN:
      case grpc::StatusCode::INTERNAL:
      case grpc::StatusCode::UNIMPLEMENTED:
      case grpc::StatusCode::UNAVAILABLE:
        Die(absl::StrCat(method, ": entry code ", e.error_code(), ": ",
                         e.error_message()));
      default:
        if (e.fence_id() != 0) {
          Die(absl::StrCat(method, ": failed entry with fence ", e.fence_id()));
        }
    }
    st->AddFence(e.fence_id());
  }
  if (ok != r.succeeded()) {
    Die(absl::StrCat(method, ": succeeded ", r.succeeded(), " but ", ok,
                     " entries are OK"));
  }
  st->AddFence(r.fence_id());
}

void RunAction(Harness& h, int field, const pb::Message& m, InputState* st) {
  request_wire_ok = RoundTrips(m);
  grpc::ClientContext ctx;
  SetDeadline(&ctx, kRpcMillis);
  switch (field) {
    case kPing: {
      v1::PingResponse r;
      CheckStatus("Ping", h.daemons->Ping(&ctx, As<v1::PingRequest>(m), &r),
                  false);
      break;
    }
    case kGetInfo: {
      v1::GetInfoResponse r;
      CheckStatus("GetInfo",
                  h.daemons->GetInfo(&ctx, As<v1::GetInfoRequest>(m), &r),
                  false);
      break;
    }
    case kGetStats: {
      v1::GetStatsResponse r;
      CheckStatus("GetStats",
                  h.daemons->GetStats(&ctx, As<v1::GetStatsRequest>(m), &r),
                  false);
      break;
    }
    case kSelfTest: {
      v1::SelfTestRequest req = As<v1::SelfTestRequest>(m);
      if (req.bytes_per_region() > kMaxSelfTestBytes) {
        req.set_bytes_per_region(kMaxSelfTestBytes +
                                 req.bytes_per_region() % 4096);
      }
      grpc::ClientContext slow;
      SetDeadline(&slow, 5 * kRpcMillis);
      v1::SelfTestResponse r;
      grpc::Status s = h.daemons->SelfTest(&slow, req, &r);
      CheckStatus("SelfTest", s, false);
      if (s.ok() && (!r.passed() || r.violations() != 0)) {
        Die(absl::StrCat("SelfTest found ", r.violations(),
                         " violations: ", r.ShortDebugString()));
      }
      break;
    }
    case kCreate: {
      v1::CreateObjectResponse r;
      grpc::Status s =
          h.objects->Create(&ctx, As<v1::CreateObjectRequest>(m), &r);
      CheckStatus("Create", s, false);
      if (s.ok()) {
        if (st->handles.size() < 256)
          st->handles.push_back(r.object().handle());
        st->AddFence(r.fence_id());
      }
      break;
    }
    case kDestroy: {
      v1::DestroyObjectRequest req = As<v1::DestroyObjectRequest>(m);
      req.set_handle(st->Handle(req.handle()));
      v1::DestroyObjectResponse r;
      CheckStatus("Destroy", h.objects->Destroy(&ctx, req, &r), false);
      break;
    }
    case kGetObject: {
      v1::GetObjectRequest req = As<v1::GetObjectRequest>(m);
      req.set_handle(st->Handle(req.handle()));
      v1::Object r;
      CheckStatus("Get", h.objects->Get(&ctx, req, &r), false);
      break;
    }
    case kListObjects: {
      v1::ListObjectsResponse r;
      CheckStatus("List",
                  h.objects->List(&ctx, As<v1::ListObjectsRequest>(m), &r),
                  false);
      break;
    }
    case kWrite: {
      v1::WriteResponse r;
      std::unique_ptr<grpc::ClientWriter<v1::WriteRequest>> w =
          h.objects->Write(&ctx, &r);
      int n = 0;
      const pb::Reflection* refl = m.GetReflection();
      const pb::FieldDescriptor* messages =
          m.GetDescriptor()->FindFieldByName("messages");
      for (int i = 0; i < refl->FieldSize(m, messages); ++i) {
        if (++n > kMaxWriteMessages) break;
        v1::WriteRequest req =
            As<v1::WriteRequest>(refl->GetRepeatedMessage(m, messages, i));
        if (!req.handle().empty()) req.set_handle(st->Handle(req.handle()));
        if (!w->Write(req)) break;
      }
      w->WritesDone();
      CheckStatus("Write", w->Finish(), false);
      break;
    }
    case kRead: {
      v1::ReadRequest req = As<v1::ReadRequest>(m);
      req.set_handle(st->Handle(req.handle()));
      std::unique_ptr<grpc::ClientReader<v1::ReadResponse>> rd =
          h.objects->Read(&ctx, req);
      v1::ReadResponse chunk;
      uint64_t expect = req.offset();
      while (rd->Read(&chunk)) {
        if (chunk.offset() != expect || chunk.data().empty()) {
          Die(absl::StrCat("Read chunks not back to back: offset ",
                           chunk.offset(), " expected ", expect, ", ",
                           chunk.data().size(), " bytes"));
        }
        expect += chunk.data().size();
      }
      CheckStatus("Read", rd->Finish(), false);
      break;
    }
    case kMigrate: {
      v1::MigrateObjectRequest req = As<v1::MigrateObjectRequest>(m);
      req.set_handle(st->Handle(req.handle()));
      v1::MigrateObjectResponse r;
      grpc::Status s = h.objects->Migrate(&ctx, req, &r);
      CheckStatus("Migrate", s, false);
      if (s.ok()) st->AddFence(r.fence_id());
      break;
    }
    case kPin: {
      v1::PinObjectRequest req = As<v1::PinObjectRequest>(m);
      req.set_handle(st->Handle(req.handle()));
      v1::PinObjectResponse r;
      CheckStatus("Pin", h.objects->Pin(&ctx, req, &r), false);
      break;
    }
    case kUnpin: {
      v1::UnpinObjectRequest req = As<v1::UnpinObjectRequest>(m);
      req.set_handle(st->Handle(req.handle()));
      v1::UnpinObjectResponse r;
      CheckStatus("Unpin", h.objects->Unpin(&ctx, req, &r), false);
      break;
    }
    case kExec: {
      v1::ExecRequest req = As<v1::ExecRequest>(m);
      ResolveExec(*st, &req);
      v1::ExecResponse r;
      grpc::Status s = h.objects->Exec(&ctx, req, &r);
      CheckStatus("Exec", s, false);
      if (s.ok()) st->AddFence(r.fence_id());
      break;
    }
    case kGetFence: {
      v1::GetFenceRequest req = As<v1::GetFenceRequest>(m);
      req.set_fence_id(st->Fence(req.fence_id()));
      v1::FenceStatus r;
      CheckStatus("FenceGet", h.fences->Get(&ctx, req, &r), false);
      break;
    }
    case kWaitFence: {
      v1::WaitFenceRequest req = As<v1::WaitFenceRequest>(m);
      req.set_fence_id(st->Fence(req.fence_id()));
      if (req.timeout_ms() > kMaxWaitMillis) {
        req.set_timeout_ms(req.timeout_ms() % kMaxWaitMillis + 1);
      }
      grpc::ClientContext quick;
      SetDeadline(&quick, 4 * kMaxWaitMillis);
      v1::FenceStatus r;
      CheckStatus("Wait", h.fences->Wait(&quick, req, &r), false);
      break;
    }
    case kWatch: {
      v1::WatchRequest req = As<v1::WatchRequest>(m);
      if (!req.handle().empty()) req.set_handle(st->Handle(req.handle()));
      grpc::ClientContext quick;
      SetDeadline(&quick, kWatchMillis);
      std::unique_ptr<grpc::ClientReader<v1::Event>> rd =
          h.fences->Watch(&quick, req);
      v1::Event event;
      uint64_t seqno = 0;
      while (rd->Read(&event)) {
        if (event.event_seqno() != ++seqno) {
          Die(absl::StrCat("Watch event_seqno ", event.event_seqno(),
                           ", expected ", seqno));
        }
      }
      CheckStatus("Watch", rd->Finish(), false);
      break;
    }
    case kListRegions: {
      v1::ListRegionsResponse r;
      CheckStatus("ListRegions",
                  h.regions->List(&ctx, As<v1::ListRegionsRequest>(m), &r),
                  false);
      break;
    }
    case kGetRegion: {
      v1::Region r;
      CheckStatus("GetRegion",
                  h.regions->Get(&ctx, As<v1::GetRegionRequest>(m), &r), false);
      break;
    }
    case kEvict: {
      v1::EvictRegionResponse r;
      grpc::Status s =
          h.regions->Evict(&ctx, As<v1::EvictRegionRequest>(m), &r);
      CheckStatus("Evict", s, false);
      if (s.ok()) st->AddFence(r.last_fence_id());
      break;
    }
    case kInjectFault: {
      v1::InjectFaultRequest req = As<v1::InjectFaultRequest>(m);
      if (req.spec().latency_us() > kMaxLatencyUs) {
        req.mutable_spec()->set_latency_us(
            req.spec().latency_us() % kMaxLatencyUs + 1);
      }
      v1::Fault r;
      grpc::Status s = h.faults->Inject(&ctx, req, &r);
      CheckStatus("Inject", s, false);
      if (s.ok() && st->faults.size() < 64) st->faults.push_back(r.id());
      break;
    }
    case kClearFaults: {
      v1::ClearFaultsRequest req = As<v1::ClearFaultsRequest>(m);
      if (req.has_id()) req.set_id(st->Fault(req.id()));
      v1::ClearFaultsResponse r;
      CheckStatus("Clear", h.faults->Clear(&ctx, req, &r), false);
      break;
    }
    case kListFaults: {
      v1::ListFaultsResponse r;
      CheckStatus("ListFaults",
                  h.faults->List(&ctx, As<v1::ListFaultsRequest>(m), &r),
                  false);
      break;
    }
    case kCreateBatch: {
      v1::CreateBatchRequest req = As<v1::CreateBatchRequest>(m);
      ClampBatch(req.mutable_entries());
      v1::BatchResponse r;
      grpc::Status s = h.objects->CreateBatch(&ctx, req, &r);
      CheckBatch("CreateBatch", req.entries_size(), s, r, st);
      for (const v1::BatchResult& e : r.results()) {
        if (e.error_code() == 0 && st->handles.size() < 256) {
          st->handles.push_back(e.handle());
        }
      }
      break;
    }
    case kMigrateBatch: {
      v1::MigrateBatchRequest req = As<v1::MigrateBatchRequest>(m);
      ClampBatch(req.mutable_entries());
      for (v1::MigrateBatchEntry& e : *req.mutable_entries()) {
        e.set_handle(st->Handle(e.handle()));
      }
      v1::BatchResponse r;
      grpc::Status s = h.objects->MigrateBatch(&ctx, req, &r);
      CheckBatch("MigrateBatch", req.entries_size(), s, r, st);
      break;
    }
    case kDestroyBatch: {
      v1::DestroyBatchRequest req = As<v1::DestroyBatchRequest>(m);
      ClampBatch(req.mutable_handles());
      for (std::string& handle : *req.mutable_handles()) {
        handle = st->Handle(handle);
      }
      v1::BatchResponse r;
      grpc::Status s = h.objects->DestroyBatch(&ctx, req, &r);
      CheckBatch("DestroyBatch", req.handles_size(), s, r, st);
      break;
    }
    case kExecBatch: {
      v1::ExecBatchRequest req = As<v1::ExecBatchRequest>(m);
      ClampBatch(req.mutable_entries());
      for (v1::ExecRequest& e : *req.mutable_entries()) ResolveExec(*st, &e);
      v1::BatchResponse r;
      grpc::Status s = h.objects->ExecBatch(&ctx, req, &r);
      CheckBatch("ExecBatch", req.entries_size(), s, r, st);
      break;
    }
    default:
      break;
  }
}

uint32_t ServiceOf(int field) {
  if (field <= 0) return 0;
  if (field >= 50 && field < 60) return kObjectService;
  if (field < 10) return kDaemonService;
  if (field < 20) return kObjectService;
  if (field < 30) return kFenceService;
  if (field < 40) return kRegionService;
  return kFaultService;
}

// Parses an input (binary, or text format after a leading '#'). nullptr if
// it does not parse.
std::unique_ptr<pb::Message> ParseInput(const uint8_t* data, size_t size) {
  const Schema& schema = GetSchema();
  std::unique_ptr<pb::Message> actions(
      schema.factory->GetPrototype(schema.actions)->New());
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  bool parsed = false;
  if (!text.empty() && text[0] == '#') {
    parsed = pb::TextFormat::ParseFromString(std::string(text), actions.get());
  } else {
    parsed = actions->ParseFromArray(data, static_cast<int>(size));
  }
  if (!parsed) {
    // The replay driver (fuzz_main.cc) runs the seed corpus: a seed that
    // does not parse would silently test nothing.
    static const bool replay = std::getenv("GPUMIG_FUZZ_REPLAY") != nullptr;
    if (replay) Die("input does not parse as gpumig.fuzz.Actions");
    return nullptr;
  }
  return actions;
}

// Runs the actions of `actions` whose service is in `services`.
void RunActions(Harness& h, const pb::Message& actions, uint32_t services,
                InputState* st) {
  const Schema& schema = GetSchema();
  const pb::Reflection* refl = actions.GetReflection();
  const pb::FieldDescriptor* list = schema.actions->FindFieldByName("actions");
  const int n = std::min(refl->FieldSize(actions, list), kMaxActions);
  for (int i = 0; i < n; ++i) {
    const pb::Message& action = refl->GetRepeatedMessage(actions, list, i);
    const pb::FieldDescriptor* f =
        action.GetReflection()->GetOneofFieldDescriptor(action,
                                                        schema.action_oneof);
    if (f == nullptr || (ServiceOf(f->number()) & services) == 0) continue;
    RunAction(h, f->number(), action.GetReflection()->GetMessage(action, f),
              st);
  }
}

// Handles, fences and faults for service-focused inputs to name.
void Setup(Harness& h, InputState* st) {
  const char* kSetup =
      R"pb(# setup
           actions {
             create { size_bytes: 65536 placements: "lmem" placements: "smem" }
           }
           actions {
             create { size_bytes: 16384 placements: "smem" placements: "lmem" }
           }
           actions {
             write { messages { handle: "#0" offset: 4096 data: "fuzz" } }
           }
           actions { migrate { handle: "#0" region: "smem" wait: true } }
           actions { exec { fill { handle: "#1" value: 7 } } }
           actions {
             inject_fault {
               spec {
                 kind: FAULT_KIND_ENGINE_LATENCY
                 trigger { next_n: 1 }
                 latency_us: 1
               }
             }
           }
      )pb";
  std::unique_ptr<pb::Message> setup =
      ParseInput(reinterpret_cast<const uint8_t*>(kSetup), std::strlen(kSetup));
  if (setup == nullptr) Die("bad setup text");
  RunActions(h, *setup, kAllServices, st);
}

// Disarms every fault and destroys every object (every principal's).
void Cleanup(Harness& h) {
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kRpcMillis);
    v1::ClearFaultsRequest req;
    req.set_all(true);
    v1::ClearFaultsResponse r;
    CheckStatus("Clear (cleanup)", h.faults->Clear(&ctx, req, &r), false);
  }
  std::string token;
  std::vector<std::string> handles;
  for (int page = 0; page < 100; ++page) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kRpcMillis);
    v1::ListObjectsRequest req;
    req.set_all_principals(true);
    req.set_page_size(1000);
    req.set_page_token(token);
    v1::ListObjectsResponse r;
    grpc::Status s = h.objects->List(&ctx, req, &r);
    CheckStatus("List (cleanup)", s, false);
    if (!s.ok()) break;
    for (const v1::Object& o : r.objects()) handles.push_back(o.handle());
    token = r.next_page_token();
    if (token.empty()) break;
  }
  for (const std::string& handle : handles) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kRpcMillis);
    v1::DestroyObjectRequest req;
    req.set_handle(handle);
    v1::DestroyObjectResponse r;
    grpc::Status s = h.objects->Destroy(&ctx, req, &r);
    CheckStatus("Destroy (cleanup)", s, false);
    if (!s.ok() && s.error_code() != grpc::StatusCode::NOT_FOUND &&
        s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      Die(absl::StrCat("an admin cannot destroy ", handle, ": ",
                       s.error_message()));
    }
  }
}

// With no objects left, every region must drain to zero (blocks come back
// once in-flight work lets go).
void CheckDrained(Harness& h) {
  std::string last;
  for (int attempt = 0; attempt < 100; ++attempt) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, kRpcMillis);
    v1::ListRegionsResponse r;
    grpc::Status s = h.regions->List(&ctx, v1::ListRegionsRequest(), &r);
    CheckStatus("ListRegions (drain)", s, false);
    last.clear();
    if (s.ok()) {
      for (const v1::Region& region : r.regions()) {
        if (region.allocated_bytes() != 0 || region.objects() != 0) {
          absl::StrAppend(&last, region.name(), ": allocated ",
                          region.allocated_bytes(), " objects ",
                          region.objects(), "; ");
        }
      }
      if (last.empty()) return;
    }
    usleep(50 * 1000);
  }
  Die("regions did not drain after every object was destroyed: " + last);
}

}  // namespace

int RunServiceInput(const uint8_t* data, size_t size, uint32_t services,
                    bool setup) {
  std::unique_ptr<pb::Message> actions = ParseInput(data, size);
  if (actions == nullptr) return 0;
  Harness& h = GetHarness();
  InputState st;
  if (setup) Setup(h, &st);
  RunActions(h, *actions, services, &st);
  Cleanup(h);
  if (++h.inputs % kDrainCheckEvery == 0) CheckDrained(h);
  return 0;
}

void ShutdownServiceHarness() {
  if (harness == nullptr) return;
  Harness* h = harness;
  Cleanup(*h);
  CheckDrained(*h);
  h->daemons.reset();
  h->objects.reset();
  h->fences.reset();
  h->regions.reset();
  h->faults.reset();
  h->channel.reset();
  h->daemon->Shutdown("fuzz replay done");
  h->daemon.reset();
  unlink(h->socket.c_str());
  rmdir(h->dir.c_str());
  delete h;
  harness = nullptr;
}

}  // namespace gpumig::fuzz
