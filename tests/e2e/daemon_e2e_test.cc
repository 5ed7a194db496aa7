// End-to-end tests of gpumigd: the real binary (//daemon:gpumigd, from the
// runfiles), started per test on a unix socket in a fresh temp dir, driven
// through the public gpumig.v1 API with the generated gRPC stubs.
//
// Covered: a create/write/read/migrate/fence round trip; a 64 MiB object
// written and read back intact; an injected blit failure that the failsafe
// turns into FALLBACK_COPY with exact content; unknown state (LMEM outside
// the aperture, FAIL_BLIT + BAN_MEMCPY) refusing every access with
// DATA_LOSS; bad input for every RPC (INVALID_ARGUMENT naming the field,
// nothing changed); ownership between two uids (as root: a child process
// that drops to uid 65534); fault RPCs refused when disabled; SIGTERM
// draining an in-flight Wait and Watch and exiting 0 (with sd_notify);
// TCP refusing clients without a certificate; health NOT_SERVING while the
// engine is wedged; an invalid config naming its field.
//
// No sleeps as synchronisation: start-up waits on connect() in a bounded
// loop, shutdown on waitpid() in a bounded loop.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gpumig/v1/daemon.grpc.pb.h"
#include "gpumig/v1/faults.grpc.pb.h"
#include "gpumig/v1/fences.grpc.pb.h"
#include "gpumig/v1/objects.grpc.pb.h"
#include "gpumig/v1/regions.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_harness.h"

namespace gpumig {
namespace {

namespace v1 = ::gpumig::v1;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint32_t kNobody = 65534;

// ---------------------------------------------------------------------------
// Helpers: files, the daemon process, clients (tests/e2e/e2e_harness.h),
// and the RPC helpers below.
using e2e::CanConnect;
using e2e::CreateObject;
using e2e::Ctx;
using e2e::Daemon;
using e2e::DaemonBinary;
using e2e::Pattern;
using e2e::ReadAll;
using e2e::ReadObject;
using e2e::Stubs;
using e2e::TempDir;
using e2e::TestConfig;
using e2e::WriteFile;

// Writes `data` at `offset` in chunks of `chunk` bytes.
grpc::Status WriteObject(Stubs& s, const std::string& handle, uint64_t offset,
                         const std::string& data, size_t chunk = kMiB) {
  auto ctx = Ctx(absl::Seconds(60));
  v1::WriteResponse resp;
  auto writer = s.objects->Write(ctx.get(), &resp);
  size_t done = 0;
  bool first = true;
  while (first || done < data.size()) {
    v1::WriteRequest req;
    if (first) {
      req.set_handle(handle);
      req.set_offset(offset);
    }
    const size_t n = std::min(chunk, data.size() - done);
    req.set_data(data.substr(done, n));
    done += n;
    first = false;
    if (!writer->Write(req)) break;
  }
  writer->WritesDone();
  grpc::Status st = writer->Finish();
  if (st.ok() && resp.bytes_written() != data.size()) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "short write");
  }
  return st;
}

v1::Fault InjectFault(Stubs& s, v1::FaultKind kind,
                      std::function<void(v1::FaultSpec*)> edit = nullptr) {
  v1::InjectFaultRequest req;
  req.mutable_spec()->set_kind(kind);
  req.mutable_spec()->mutable_trigger()->set_always(true);
  if (edit) edit(req.mutable_spec());
  v1::Fault fault;
  grpc::Status st = s.faults->Inject(Ctx().get(), req, &fault);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return fault;
}

// grpc.health.v1.Health/Check through the generic stub: the request is
// HealthCheckRequest{service = 1}, the answer HealthCheckResponse{status = 1}
// (1 SERVING, 2 NOT_SERVING, 3 SERVICE_UNKNOWN); -1 on an RPC error.
int HealthStatus(const std::shared_ptr<grpc::Channel>& channel,
                 const std::string& service) {
  std::string req;
  req.push_back(0x0a);
  req.push_back(static_cast<char>(service.size()));
  req += service;
  grpc::Slice slice(req);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::GenericStub stub(channel);
  auto ctx = Ctx();
  absl::Notification done;
  grpc::Status status;
  stub.UnaryCall(ctx.get(), "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                 &request, &response, [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!status.ok()) return -1;
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return -1;
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  if (bytes.empty()) return 0;  // status 0 = UNKNOWN (default omitted)
  if (bytes.size() < 2 || bytes[0] != 0x08) return -1;
  return bytes[1];
}

#define ASSERT_OK(expr)                                                       \
  do {                                                                        \
    const grpc::Status st_ = (expr);                                          \
    ASSERT_TRUE(st_.ok()) << st_.error_code() << ": " << st_.error_message(); \
  } while (0)

#define EXPECT_CODE(expr, code)                         \
  do {                                                  \
    const grpc::Status st_ = (expr);                    \
    EXPECT_EQ(st_.error_code(), grpc::StatusCode::code) \
        << st_.error_message();                         \
  } while (0)

class DaemonE2eTest : public ::testing::Test {
 protected:
  void StartDaemon(std::string config = TestConfig(),
                   std::vector<std::string> flags = {},
                   std::vector<std::string> env = {}) {
    daemon_ = std::make_unique<Daemon>(dir_);
    Daemon::Options o;
    o.config = std::move(config);
    o.flags = std::move(flags);
    o.env = std::move(env);
    ASSERT_TRUE(daemon_->Start(o));
    stubs_ = std::make_unique<Stubs>(daemon_->Channel());
  }
  void TearDown() override {
    if (daemon_ != nullptr && daemon_->pid() > 0) {
      std::optional<int> rc = daemon_->Stop(SIGTERM, absl::Seconds(20));
      EXPECT_EQ(rc, std::optional<int>(0)) << daemon_->Log();
    }
    if (std::getenv("GPUMIG_E2E_DUMP_LOG") != nullptr && daemon_ != nullptr) {
      std::fprintf(stderr, "%s", daemon_->Log().c_str());
    }
  }

  TempDir dir_;
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<Stubs> stubs_;
};

// ---------------------------------------------------------------------------
// Round trips.

TEST_F(DaemonE2eTest, CreateWriteReadMigrateAndWaitRoundTrip) {
  StartDaemon();
  Stubs& s = *stubs_;

  v1::GetInfoResponse info;
  ASSERT_OK(s.daemon->GetInfo(Ctx().get(), v1::GetInfoRequest(), &info));
  EXPECT_EQ(info.backend(), "sim");
  EXPECT_EQ(info.caller().name(), absl::StrCat("uid:", getuid()));
  EXPECT_EQ(info.caller().uid(), getuid());
  EXPECT_EQ(info.caller().is_admin(), getuid() == 0);
  EXPECT_TRUE(info.fault_injection_enabled());
  EXPECT_EQ(info.limits().max_chunk_bytes(), kMiB);
  EXPECT_EQ(info.limits().page_bytes(), 4096u);

  v1::CreateObjectResponse created;
  ASSERT_OK(CreateObject(s, 2 * kMiB, {"lmem", "smem"}, &created,
                         /*require_cpu_access=*/true));
  const v1::Object& obj = created.object();
  EXPECT_TRUE(absl::StartsWith(obj.handle(), "obj-")) << obj.handle();
  EXPECT_EQ(obj.size_bytes(), 2 * kMiB);
  EXPECT_EQ(obj.region(), "lmem");
  EXPECT_EQ(obj.owner(), info.caller().name());
  EXPECT_NE(created.fence_id(), 0u);

  // The clear's fence.
  v1::WaitFenceRequest wait;
  wait.set_fence_id(created.fence_id());
  v1::FenceStatus clear;
  ASSERT_OK(s.fences->Wait(Ctx().get(), wait, &clear));
  EXPECT_EQ(clear.state(), v1::FENCE_STATE_SIGNALED);
  EXPECT_EQ(clear.outcome(), v1::FENCE_OUTCOME_BLIT_OK);
  EXPECT_EQ(clear.kind(), v1::FENCE_KIND_CLEAR);
  EXPECT_EQ(clear.handle(), obj.handle());

  // A new object reads as zeros; then as what we wrote.
  std::string got;
  ASSERT_OK(ReadObject(s, obj.handle(), 0, 0, &got));
  EXPECT_EQ(got, std::string(2 * kMiB, '\0'));
  const std::string data = Pattern(2 * kMiB, 1);
  ASSERT_OK(WriteObject(s, obj.handle(), 0, data, 512 * 1024));
  ASSERT_OK(ReadObject(s, obj.handle(), 0, 0, &got));
  EXPECT_TRUE(got == data);
  ASSERT_OK(ReadObject(s, obj.handle(), 4096, 8192, &got, 1000));
  EXPECT_TRUE(got == data.substr(4096, 8192));

  // Migrate with wait.
  v1::MigrateObjectRequest mig;
  mig.set_handle(obj.handle());
  mig.set_region("smem");
  mig.set_wait(true);
  v1::MigrateObjectResponse migrated;
  ASSERT_OK(s.objects->Migrate(Ctx().get(), mig, &migrated));
  EXPECT_EQ(migrated.fence().state(), v1::FENCE_STATE_SIGNALED);
  EXPECT_EQ(migrated.fence().outcome(), v1::FENCE_OUTCOME_BLIT_OK);
  EXPECT_EQ(migrated.fence().kind(), v1::FENCE_KIND_MIGRATE);
  EXPECT_EQ(migrated.fence().source_region(), "lmem");
  EXPECT_EQ(migrated.fence().target_region(), "smem");
  ASSERT_OK(ReadObject(s, obj.handle(), 0, 0, &got));
  EXPECT_TRUE(got == data);

  v1::GetObjectRequest get;
  get.set_handle(obj.handle());
  v1::Object now;
  ASSERT_OK(s.objects->Get(Ctx().get(), get, &now));
  EXPECT_EQ(now.region(), "smem");
  EXPECT_EQ(now.move_fence_id(), migrated.fence_id());
  EXPECT_EQ(now.state(), v1::OBJECT_STATE_OK);

  // Pin blocks migration; unpin at 0 is refused.
  v1::PinObjectRequest pin;
  pin.set_handle(obj.handle());
  v1::PinObjectResponse pinned;
  ASSERT_OK(s.objects->Pin(Ctx().get(), pin, &pinned));
  EXPECT_EQ(pinned.pin_count(), 1u);
  mig.set_region("lmem");
  EXPECT_CODE(s.objects->Migrate(Ctx().get(), mig, &migrated),
              FAILED_PRECONDITION);
  v1::UnpinObjectRequest unpin;
  unpin.set_handle(obj.handle());
  v1::UnpinObjectResponse unpinned;
  ASSERT_OK(s.objects->Unpin(Ctx().get(), unpin, &unpinned));
  EXPECT_EQ(unpinned.pin_count(), 0u);
  EXPECT_CODE(s.objects->Unpin(Ctx().get(), unpin, &unpinned),
              FAILED_PRECONDITION);

  // Exec: fill, then checksum (FNV-1a 64 of 4096 bytes of 0xab).
  v1::ExecRequest fill;
  fill.mutable_fill()->set_handle(obj.handle());
  fill.mutable_fill()->set_value(0xab);
  fill.mutable_fill()->set_length(4096);
  fill.set_wait(true);
  v1::ExecResponse filled;
  ASSERT_OK(s.objects->Exec(Ctx().get(), fill, &filled));
  EXPECT_EQ(filled.fence().outcome(), v1::FENCE_OUTCOME_BLIT_OK);
  v1::ExecRequest sum;
  sum.mutable_checksum()->set_handle(obj.handle());
  sum.mutable_checksum()->set_length(4096);
  v1::ExecResponse summed;
  ASSERT_OK(s.objects->Exec(Ctx().get(), sum, &summed));
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < 4096; ++i) {
    h ^= 0xab;
    h *= 0x100000001b3ull;
  }
  ASSERT_TRUE(summed.has_checksum());
  EXPECT_EQ(summed.checksum(), h);

  // List, regions, stats.
  v1::ListObjectsResponse list;
  ASSERT_OK(s.objects->List(Ctx().get(), v1::ListObjectsRequest(), &list));
  ASSERT_EQ(list.objects_size(), 1);
  EXPECT_EQ(list.objects(0).handle(), obj.handle());
  v1::ListRegionsResponse regions;
  ASSERT_OK(s.regions->List(Ctx().get(), v1::ListRegionsRequest(), &regions));
  ASSERT_EQ(regions.regions_size(), 2);
  EXPECT_EQ(regions.regions(0).name(), "lmem");
  EXPECT_EQ(regions.regions(0).aperture_bytes(), 4 * kMiB);
  v1::GetStatsResponse stats;
  ASSERT_OK(s.daemon->GetStats(Ctx().get(), v1::GetStatsRequest(), &stats));
  EXPECT_EQ(stats.objects(), 1u);
  bool saw_create = false;
  for (const v1::RpcMethodStats& m : stats.rpcs()) {
    if (m.method() == "/gpumig.v1.ObjectService/Create") {
      saw_create = true;
      EXPECT_EQ(m.calls(), 1u);
    }
  }
  EXPECT_TRUE(saw_create);

  // Destroy: gone.
  v1::DestroyObjectRequest destroy;
  destroy.set_handle(obj.handle());
  v1::DestroyObjectResponse destroyed;
  ASSERT_OK(s.objects->Destroy(Ctx().get(), destroy, &destroyed));
  EXPECT_CODE(s.objects->Get(Ctx().get(), get, &now), NOT_FOUND);
}

TEST_F(DaemonE2eTest, SixtyFourMiBObjectRoundTripsIntact) {
  StartDaemon();
  Stubs& s = *stubs_;
  v1::CreateObjectResponse created;
  ASSERT_OK(CreateObject(s, 64 * kMiB, {"smem"}, &created));
  const std::string data = Pattern(64 * kMiB, 64);
  ASSERT_OK(WriteObject(s, created.object().handle(), 0, data));
  std::string got;
  ASSERT_OK(ReadObject(s, created.object().handle(), 0, 0, &got));
  ASSERT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data) << "content differs";
}

TEST_F(DaemonE2eTest, ReadAndWriteWorkOutsideTheAperture) {
  StartDaemon();
  Stubs& s = *stubs_;
  // Take the whole 4 MiB aperture, then place an object beyond it.
  v1::CreateObjectResponse low, high;
  ASSERT_OK(CreateObject(s, 4 * kMiB, {"lmem"}, &low, true));
  ASSERT_OK(CreateObject(s, 2 * kMiB, {"lmem"}, &high));
  EXPECT_FALSE(high.object().cpu_accessible());
  const std::string data = Pattern(2 * kMiB, 9);
  ASSERT_OK(WriteObject(s, high.object().handle(), 0, data));
  std::string got;
  ASSERT_OK(ReadObject(s, high.object().handle(), 0, 0, &got));
  EXPECT_TRUE(got == data);
}

// ---------------------------------------------------------------------------
// The failsafe, through the API.

TEST_F(DaemonE2eTest, InjectedBlitFailureFallsBackToCpuCopy) {
  StartDaemon();
  Stubs& s = *stubs_;
  v1::CreateObjectResponse created;
  ASSERT_OK(CreateObject(s, kMiB, {"smem", "lmem"}, &created, true));
  const std::string handle = created.object().handle();
  const std::string data = Pattern(kMiB, 3);
  ASSERT_OK(WriteObject(s, handle, 0, data));

  v1::Fault fault =
      InjectFault(s, v1::FAULT_KIND_FAIL_BLIT, [](v1::FaultSpec* f) {
        f->mutable_trigger()->set_next_n(1);
        f->set_region("lmem");
        f->set_op(v1::FENCE_KIND_MIGRATE);
      });
  EXPECT_NE(fault.id(), 0u);

  v1::MigrateObjectRequest mig;
  mig.set_handle(handle);
  mig.set_region("lmem");
  mig.set_wait(true);
  v1::MigrateObjectResponse migrated;
  ASSERT_OK(s.objects->Migrate(Ctx().get(), mig, &migrated));
  EXPECT_EQ(migrated.fence().outcome(), v1::FENCE_OUTCOME_FALLBACK_COPY);
  EXPECT_EQ(migrated.fence().error_code(), 0);
  EXPECT_NE(migrated.fence().engine_error_code(), 0);
  std::string got;
  ASSERT_OK(ReadObject(s, handle, 0, 0, &got));
  EXPECT_TRUE(got == data) << "the fallback must copy exactly";

  v1::ListFaultsResponse faults;
  ASSERT_OK(s.faults->List(Ctx().get(), v1::ListFaultsRequest(), &faults));
  ASSERT_EQ(faults.faults_size(), 1);
  EXPECT_EQ(faults.faults(0).fired_count(), 1u);
  EXPECT_TRUE(faults.faults(0).exhausted());
  v1::ClearFaultsRequest clear;
  clear.set_all(true);
  v1::ClearFaultsResponse cleared;
  ASSERT_OK(s.faults->Clear(Ctx().get(), clear, &cleared));
  EXPECT_EQ(cleared.cleared(), 1u);
  EXPECT_THAT(daemon_->Log(), HasSubstr("event=fault_injected"));
}

TEST_F(DaemonE2eTest, FailedBlitOutsideTheApertureIsUnknownStateAndRefused) {
  StartDaemon();
  Stubs& s = *stubs_;
  // Fill the 4 MiB aperture so the migrated object lands beyond it.
  v1::CreateObjectResponse filler, victim;
  ASSERT_OK(CreateObject(s, 4 * kMiB, {"lmem"}, &filler, true));
  ASSERT_OK(CreateObject(s, kMiB, {"smem", "lmem"}, &victim));
  const std::string handle = victim.object().handle();
  ASSERT_OK(WriteObject(s, handle, 0, Pattern(kMiB, 4)));
  InjectFault(s, v1::FAULT_KIND_FAIL_BLIT, [](v1::FaultSpec* f) {
    f->mutable_trigger()->set_next_n(1);
    f->set_op(v1::FENCE_KIND_MIGRATE);
  });
  InjectFault(s, v1::FAULT_KIND_BAN_MEMCPY);

  v1::MigrateObjectRequest mig;
  mig.set_handle(handle);
  mig.set_region("lmem");
  mig.set_wait(true);
  v1::MigrateObjectResponse migrated;
  ASSERT_OK(s.objects->Migrate(Ctx().get(), mig, &migrated));
  EXPECT_EQ(migrated.fence().outcome(), v1::FENCE_OUTCOME_UNKNOWN_STATE);
  EXPECT_EQ(migrated.fence().error_code(),
            static_cast<int>(grpc::StatusCode::DATA_LOSS));

  // Get still works and says why.
  v1::GetObjectRequest get;
  get.set_handle(handle);
  v1::Object obj;
  ASSERT_OK(s.objects->Get(Ctx().get(), get, &obj));
  EXPECT_EQ(obj.state(), v1::OBJECT_STATE_UNKNOWN);
  EXPECT_FALSE(obj.unknown_reason().empty());
  EXPECT_EQ(obj.unknown_fence_id(), migrated.fence_id());

  // Every access is refused with DATA_LOSS.
  std::string got;
  EXPECT_CODE(ReadObject(s, handle, 0, 0, &got), DATA_LOSS);
  EXPECT_TRUE(got.empty());
  EXPECT_CODE(WriteObject(s, handle, 0, std::string(4096, 'x')), DATA_LOSS);
  mig.set_region("smem");
  EXPECT_CODE(s.objects->Migrate(Ctx().get(), mig, &migrated), DATA_LOSS);
  v1::PinObjectRequest pin;
  pin.set_handle(handle);
  v1::PinObjectResponse pinned;
  EXPECT_CODE(s.objects->Pin(Ctx().get(), pin, &pinned), DATA_LOSS);
  v1::ExecRequest fill;
  fill.mutable_fill()->set_handle(handle);
  v1::ExecResponse exec;
  EXPECT_CODE(s.objects->Exec(Ctx().get(), fill, &exec), DATA_LOSS);
  v1::ExecRequest sum;
  sum.mutable_checksum()->set_handle(handle);
  EXPECT_CODE(s.objects->Exec(Ctx().get(), sum, &exec), DATA_LOSS);

  // Destroy works.
  v1::DestroyObjectRequest destroy;
  destroy.set_handle(handle);
  v1::DestroyObjectResponse destroyed;
  ASSERT_OK(s.objects->Destroy(Ctx().get(), destroy, &destroyed));
}

// ---------------------------------------------------------------------------
// Bad input: INVALID_ARGUMENT naming the field, and nothing changes.

TEST_F(DaemonE2eTest, BadInputForEveryRpcNamesTheFieldAndChangesNothing) {
  StartDaemon();
  Stubs& s = *stubs_;
  v1::CreateObjectResponse created;
  ASSERT_OK(CreateObject(s, kMiB, {"smem"}, &created));
  const std::string handle = created.object().handle();
  const std::string data = Pattern(kMiB, 5);
  ASSERT_OK(WriteObject(s, handle, 0, data));
  v1::GetStatsResponse before;
  ASSERT_OK(s.daemon->GetStats(Ctx().get(), v1::GetStatsRequest(), &before));

  auto expect_field = [](const grpc::Status& st, const std::string& field,
                         const std::string& what) {
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << what << ": " << st.error_message();
    EXPECT_THAT(st.error_message(), StartsWith(field + ":")) << what;
  };

  // ObjectService.Create
  {
    auto create = [&](std::function<void(v1::CreateObjectRequest*)> edit) {
      v1::CreateObjectRequest req;
      req.set_size_bytes(kMiB);
      req.add_placements("smem");
      edit(&req);
      v1::CreateObjectResponse resp;
      return s.objects->Create(Ctx().get(), req, &resp);
    };
    expect_field(create([](auto* r) { r->set_size_bytes(0); }), "size_bytes",
                 "size 0");
    expect_field(create([](auto* r) { r->set_size_bytes(4097); }), "size_bytes",
                 "size not a page multiple");
    expect_field(create([](auto* r) { r->clear_placements(); }), "placements",
                 "no placements");
    expect_field(create([](auto* r) { r->set_placements(0, "vram"); }),
                 "placements[0]", "unknown region");
    expect_field(create([](auto* r) { r->add_placements("smem"); }),
                 "placements[1]", "repeated region");
    expect_field(create([](auto* r) { r->set_label(std::string(300, 'a')); }),
                 "label", "long label");
    expect_field(create([](auto* r) {
                   r->set_placements(0, "lmem");
                   r->set_size_bytes(8 * kMiB);
                   r->set_require_cpu_access(true);
                 }),
                 "size_bytes", "larger than the aperture");
  }
  // Destroy / Get / Pin / Unpin: handles.
  for (const std::string& bad :
       {std::string(""), std::string("obj-0"), std::string("obj-x"),
        std::string("7"), std::string("0x7fff5fbff8a0")}) {
    v1::DestroyObjectRequest d;
    d.set_handle(bad);
    v1::DestroyObjectResponse dr;
    expect_field(s.objects->Destroy(Ctx().get(), d, &dr), "handle",
                 "Destroy " + bad);
    v1::GetObjectRequest g;
    g.set_handle(bad);
    v1::Object o;
    expect_field(s.objects->Get(Ctx().get(), g, &o), "handle", "Get " + bad);
    v1::PinObjectRequest p;
    p.set_handle(bad);
    v1::PinObjectResponse pr;
    expect_field(s.objects->Pin(Ctx().get(), p, &pr), "handle", "Pin " + bad);
    v1::UnpinObjectRequest u;
    u.set_handle(bad);
    v1::UnpinObjectResponse ur;
    expect_field(s.objects->Unpin(Ctx().get(), u, &ur), "handle",
                 "Unpin " + bad);
  }
  // List
  {
    v1::ListObjectsRequest req;
    req.set_page_token("not-a-token");
    v1::ListObjectsResponse resp;
    expect_field(s.objects->List(Ctx().get(), req, &resp), "page_token",
                 "List token");
  }
  // Write
  {
    auto ctx = Ctx();
    v1::WriteResponse resp;
    auto w = s.objects->Write(ctx.get(), &resp);
    v1::WriteRequest req;
    req.set_data("abc");  // no handle
    w->Write(req);
    w->WritesDone();
    expect_field(w->Finish(), "handle", "Write without handle");
  }
  {
    auto ctx = Ctx();
    v1::WriteResponse resp;
    auto w = s.objects->Write(ctx.get(), &resp);
    v1::WriteRequest req;
    req.set_handle(handle);
    req.set_data(std::string(kMiB + 1, 'x'));
    w->Write(req);
    w->WritesDone();
    expect_field(w->Finish(), "data", "Write chunk over 1 MiB");
  }
  {
    auto ctx = Ctx();
    v1::WriteResponse resp;
    auto w = s.objects->Write(ctx.get(), &resp);
    v1::WriteRequest req;
    req.set_handle(handle);
    w->Write(req);
    req.set_offset(5);  // later message with offset (and handle)
    w->Write(req);
    w->WritesDone();
    expect_field(w->Finish(), "handle", "Write handle twice");
  }
  EXPECT_CODE(WriteObject(s, handle, kMiB - 10, std::string(20, 'x')),
              OUT_OF_RANGE);
  // Read
  {
    std::string got;
    auto ctx = Ctx();
    v1::ReadRequest req;
    req.set_handle(handle);
    req.set_max_chunk_bytes(2 * kMiB);
    auto r = s.objects->Read(ctx.get(), req);
    v1::ReadResponse resp;
    while (r->Read(&resp)) {
    }
    expect_field(r->Finish(), "max_chunk_bytes", "Read chunk too big");
    expect_field(ReadObject(s, "obj-", 0, 0, &got), "handle", "Read handle");
    EXPECT_CODE(ReadObject(s, handle, kMiB + 1, 0, &got), OUT_OF_RANGE);
    EXPECT_CODE(ReadObject(s, handle, 0, kMiB + 1, &got), OUT_OF_RANGE);
  }
  // Migrate
  {
    v1::MigrateObjectRequest req;
    v1::MigrateObjectResponse resp;
    req.set_handle("obj");
    req.set_region("lmem");
    expect_field(s.objects->Migrate(Ctx().get(), req, &resp), "handle",
                 "Migrate handle");
    req.set_handle(handle);
    req.clear_region();
    expect_field(s.objects->Migrate(Ctx().get(), req, &resp), "region",
                 "Migrate no region");
    req.set_region("vram");
    expect_field(s.objects->Migrate(Ctx().get(), req, &resp), "region",
                 "Migrate unknown region");
  }
  // Exec
  {
    v1::ExecResponse resp;
    v1::ExecRequest none;
    expect_field(s.objects->Exec(Ctx().get(), none, &resp), "op", "Exec no op");
    v1::ExecRequest fill;
    fill.mutable_fill()->set_handle(handle);
    fill.mutable_fill()->set_value(256);
    expect_field(s.objects->Exec(Ctx().get(), fill, &resp), "fill.value",
                 "Exec fill value");
    v1::ExecRequest copy;
    copy.mutable_copy()->set_src_handle(handle);
    copy.mutable_copy()->set_dst_handle(handle);
    copy.mutable_copy()->set_dst_offset(4096);
    copy.mutable_copy()->set_length(8192);
    expect_field(s.objects->Exec(Ctx().get(), copy, &resp), "copy",
                 "Exec overlapping copy");
    copy.mutable_copy()->set_dst_handle("nope");
    expect_field(s.objects->Exec(Ctx().get(), copy, &resp), "copy.dst_handle",
                 "Exec copy handle");
    v1::ExecRequest sum;
    sum.mutable_checksum()->set_handle("obj-1x");
    expect_field(s.objects->Exec(Ctx().get(), sum, &resp), "checksum.handle",
                 "Exec checksum handle");
    sum.mutable_checksum()->set_handle(handle);
    sum.mutable_checksum()->set_offset(2 * kMiB);
    EXPECT_CODE(s.objects->Exec(Ctx().get(), sum, &resp), OUT_OF_RANGE);
  }
  // FenceService
  {
    v1::FenceStatus fs;
    expect_field(s.fences->Get(Ctx().get(), v1::GetFenceRequest(), &fs),
                 "fence_id", "Fence Get 0");
    expect_field(s.fences->Wait(Ctx().get(), v1::WaitFenceRequest(), &fs),
                 "fence_id", "Fence Wait 0");
    v1::GetFenceRequest unknown;
    unknown.set_fence_id(1ull << 60);
    EXPECT_CODE(s.fences->Get(Ctx().get(), unknown, &fs), NOT_FOUND);
    for (int variant = 0; variant < 2; ++variant) {
      auto ctx = Ctx();
      v1::WatchRequest req;
      if (variant == 0) {
        req.set_handle("obj-00");
      } else {
        req.add_kinds(v1::EVENT_KIND_UNSPECIFIED);
      }
      auto r = s.fences->Watch(ctx.get(), req);
      v1::Event e;
      while (r->Read(&e)) {
      }
      expect_field(r->Finish(), variant == 0 ? "handle" : "kinds[0]", "Watch");
    }
  }
  // RegionService
  {
    v1::Region region;
    expect_field(s.regions->Get(Ctx().get(), v1::GetRegionRequest(), &region),
                 "name", "Region Get");
    v1::GetRegionRequest unknown;
    unknown.set_name("vram");
    EXPECT_CODE(s.regions->Get(Ctx().get(), unknown, &region), NOT_FOUND);
    if (getuid() == 0) {
      v1::EvictRegionResponse resp;
      expect_field(
          s.regions->Evict(Ctx().get(), v1::EvictRegionRequest(), &resp),
          "name", "Evict");
    }
  }
  // FaultService (admin only: the test runs as root in CI)
  if (getuid() == 0) {
    v1::Fault fault;
    expect_field(
        s.faults->Inject(Ctx().get(), v1::InjectFaultRequest(), &fault), "spec",
        "Inject without spec");
    v1::InjectFaultRequest req;
    req.mutable_spec()->mutable_trigger()->set_always(true);
    expect_field(s.faults->Inject(Ctx().get(), req, &fault), "spec.kind",
                 "Inject kind");
    req.mutable_spec()->set_kind(v1::FAULT_KIND_FAIL_BLIT);
    req.mutable_spec()->mutable_trigger()->set_next_n(0);
    expect_field(s.faults->Inject(Ctx().get(), req, &fault),
                 "spec.trigger.next_n", "Inject next_n");
    req.mutable_spec()->mutable_trigger()->mutable_probability()->set_p(2);
    expect_field(s.faults->Inject(Ctx().get(), req, &fault),
                 "spec.trigger.probability.p", "Inject p");
    req.mutable_spec()->mutable_trigger()->set_always(true);
    req.mutable_spec()->set_region("vram");
    expect_field(s.faults->Inject(Ctx().get(), req, &fault), "spec.region",
                 "Inject region");
    req.mutable_spec()->clear_region();
    req.mutable_spec()->set_latency_us(10);
    expect_field(s.faults->Inject(Ctx().get(), req, &fault), "spec.latency_us",
                 "Inject latency");
    v1::ClearFaultsResponse cleared;
    expect_field(
        s.faults->Clear(Ctx().get(), v1::ClearFaultsRequest(), &cleared),
        "target", "Clear no target");
    v1::ClearFaultsRequest zero;
    zero.set_id(0);
    expect_field(s.faults->Clear(Ctx().get(), zero, &cleared), "id",
                 "Clear id 0");
    v1::ListFaultsResponse listed;
    ASSERT_OK(s.faults->List(Ctx().get(), v1::ListFaultsRequest(), &listed));
    EXPECT_EQ(listed.faults_size(), 0) << "no bad Inject may arm a fault";
    // DaemonService.SelfTest
    v1::SelfTestRequest st;
    st.set_bytes_per_region(1000);
    v1::SelfTestResponse str;
    expect_field(s.daemon->SelfTest(Ctx().get(), st, &str), "bytes_per_region",
                 "SelfTest");
  }

  // Nothing changed: same objects, same content.
  v1::GetStatsResponse after;
  ASSERT_OK(s.daemon->GetStats(Ctx().get(), v1::GetStatsRequest(), &after));
  EXPECT_EQ(after.objects(), before.objects());
  std::string got;
  ASSERT_OK(ReadObject(s, handle, 0, 0, &got));
  EXPECT_TRUE(got == data);
  bool counted_errors = false;
  for (const v1::RpcMethodStats& m : after.rpcs()) {
    if (m.method() == "/gpumig.v1.ObjectService/Create") {
      counted_errors = m.errors() >= 7;
    }
  }
  EXPECT_TRUE(counted_errors);
}

TEST_F(DaemonE2eTest, QuotaIsResourceExhaustedAndLogged) {
  StartDaemon(TestConfig(R"pb(default_quota: "1MiB")pb"));
  Stubs& s = *stubs_;
  v1::CreateObjectResponse created;
  ASSERT_OK(CreateObject(s, kMiB, {"smem"}, &created));
  EXPECT_CODE(CreateObject(s, 4096, {"smem"}, &created), RESOURCE_EXHAUSTED);
  EXPECT_THAT(daemon_->Log(), HasSubstr("event=quota_refused"));
}

TEST_F(DaemonE2eTest, WaitHonoursItsTimeout) {
  StartDaemon();
  Stubs& s = *stubs_;
  InjectFault(s, v1::FAULT_KIND_ENGINE_LATENCY,
              [](v1::FaultSpec* f) { f->set_latency_us(2000000); });
  v1::CreateObjectResponse created;
  ASSERT_OK(CreateObject(s, 4096, {"smem"}, &created));
  v1::WaitFenceRequest wait;
  wait.set_fence_id(created.fence_id());
  wait.set_timeout_ms(50);
  v1::FenceStatus status;
  EXPECT_CODE(s.fences->Wait(Ctx().get(), wait, &status), DEADLINE_EXCEEDED);
  // A client deadline is honoured too.
  wait.set_timeout_ms(0);
  EXPECT_CODE(s.fences->Wait(Ctx(absl::Milliseconds(100)).get(), wait, &status),
              DEADLINE_EXCEEDED);
  v1::ClearFaultsRequest clear;
  clear.set_all(true);
  v1::ClearFaultsResponse cleared;
  ASSERT_OK(s.faults->Clear(Ctx().get(), clear, &cleared));
}

// ---------------------------------------------------------------------------
// Identity and ownership.

// The child process of OwnershipBetweenTwoUids, not a test: the parent
// re-executes this binary with kProbeAsNobodyFlag and the environment below.
// It drops to uid 65534, probes root's object and checks its own; prints
// "FAILED: <what>" per failed check and "GPUMIG_E2E_CHILD_OBJECT=<handle>"
// for the object it made; exits 0 only if every check held.
constexpr char kProbeAsNobodyFlag[] = "--probe_as_nobody";

class ChildChecks {
 public:
  bool Check(bool ok, absl::string_view what) {
    if (!ok) {
      std::printf("FAILED: %.*s\n", static_cast<int>(what.size()), what.data());
      ++failures_;
    }
    return ok;
  }
  bool Ok(const grpc::Status& st, absl::string_view what) {
    return Check(st.ok(), absl::StrCat(what, ": ", st.error_code(), " ",
                                       st.error_message()));
  }
  // The uniform refusal: PERMISSION_DENIED, and a message that names nothing.
  void Denied(const grpc::Status& st, absl::string_view what) {
    Check(st.error_code() == grpc::StatusCode::PERMISSION_DENIED &&
              st.error_message() == "permission denied",
          absl::StrCat(what,
                       ": want PERMISSION_DENIED \"permission denied\", "
                       "got ",
                       st.error_code(), " ", st.error_message()));
  }
  int failures() const { return failures_; }

 private:
  int failures_ = 0;
};

int ProbeAsNobody() {
  ChildChecks c;
  const char* socket_path = std::getenv("GPUMIG_E2E_CHILD_SOCKET");
  const char* handle_env = std::getenv("GPUMIG_E2E_CHILD_HANDLE");
  const char* fence_env = std::getenv("GPUMIG_E2E_CHILD_FENCE");
  uint64_t fence_id = 0;
  if (!c.Check(socket_path != nullptr && handle_env != nullptr &&
                   fence_env != nullptr &&
                   absl::SimpleAtoi(fence_env, &fence_id),
               "GPUMIG_E2E_CHILD_{SOCKET,HANDLE,FENCE} set")) {
    return 2;
  }
  const std::string handle = handle_env;
  if (!c.Check(setgroups(0, nullptr) == 0 && setgid(kNobody) == 0 &&
                   setuid(kNobody) == 0,
               "drop to uid/gid 65534")) {
    return 2;
  }
  prctl(PR_SET_DUMPABLE, 1);  // Sanitizers inspect their own process.

  Stubs s(grpc::CreateChannel(absl::StrCat("unix:", socket_path),
                              grpc::InsecureChannelCredentials()));
  v1::GetInfoResponse info;
  if (!c.Ok(s.daemon->GetInfo(Ctx().get(), v1::GetInfoRequest(), &info),
            "GetInfo")) {
    return 1;
  }
  c.Check(info.caller().name() == "uid:65534", "caller name is uid:65534");
  c.Check(info.caller().uid() == kNobody, "caller uid is 65534");
  c.Check(!info.caller().is_admin(), "caller is not admin");

  v1::GetObjectRequest get;
  get.set_handle(handle);
  v1::Object obj;
  c.Denied(s.objects->Get(Ctx().get(), get, &obj), "Get");
  c.Check(obj.ByteSizeLong() == 0, "nothing about the object leaks");
  std::string got;
  c.Denied(ReadObject(s, handle, 0, 0, &got), "Read");
  c.Check(got.empty(), "Read returned no bytes");
  c.Denied(WriteObject(s, handle, 0, std::string(4096, 'x')), "Write");
  v1::DestroyObjectRequest destroy;
  destroy.set_handle(handle);
  v1::DestroyObjectResponse destroyed;
  c.Denied(s.objects->Destroy(Ctx().get(), destroy, &destroyed), "Destroy");
  v1::MigrateObjectRequest mig;
  mig.set_handle(handle);
  mig.set_region("lmem");
  v1::MigrateObjectResponse migrated;
  c.Denied(s.objects->Migrate(Ctx().get(), mig, &migrated), "Migrate");
  v1::PinObjectRequest pin;
  pin.set_handle(handle);
  v1::PinObjectResponse pinned;
  c.Denied(s.objects->Pin(Ctx().get(), pin, &pinned), "Pin");
  v1::ExecRequest sum;
  sum.mutable_checksum()->set_handle(handle);
  v1::ExecResponse exec;
  c.Denied(s.objects->Exec(Ctx().get(), sum, &exec), "Exec");
  v1::GetFenceRequest fence;
  fence.set_fence_id(fence_id);
  v1::FenceStatus fs;
  c.Denied(s.fences->Get(Ctx().get(), fence, &fs), "Fence Get");
  {
    auto ctx = Ctx();
    v1::WatchRequest w;
    w.set_handle(handle);
    auto r = s.fences->Watch(ctx.get(), w);
    v1::Event e;
    while (r->Read(&e)) {
    }
    c.Denied(r->Finish(), "Watch");
  }
  v1::ListObjectsRequest all;
  all.set_all_principals(true);
  v1::ListObjectsResponse list;
  c.Denied(s.objects->List(Ctx().get(), all, &list), "List all");
  if (c.Ok(s.objects->List(Ctx().get(), v1::ListObjectsRequest(), &list),
           "List own")) {
    c.Check(list.objects_size() == 0, "own list is empty");
  }
  v1::ListFaultsResponse faults;
  c.Denied(s.faults->List(Ctx().get(), v1::ListFaultsRequest(), &faults),
           "Fault List");
  v1::InjectFaultRequest inject;
  inject.mutable_spec()->set_kind(v1::FAULT_KIND_WEDGE_ENGINE);
  inject.mutable_spec()->mutable_trigger()->set_always(true);
  v1::Fault fault;
  c.Denied(s.faults->Inject(Ctx().get(), inject, &fault), "Fault Inject");
  v1::EvictRegionRequest evict;
  evict.set_name("lmem");
  v1::EvictRegionResponse evicted;
  c.Denied(s.regions->Evict(Ctx().get(), evict, &evicted), "Evict");
  v1::SelfTestResponse self;
  c.Denied(s.daemon->SelfTest(Ctx().get(), v1::SelfTestRequest(), &self),
           "SelfTest");

  // Its own object works, and stays its own.
  v1::CreateObjectResponse mine;
  if (!c.Ok(CreateObject(s, 8192, {"smem"}, &mine), "Create own")) return 1;
  c.Check(mine.object().owner() == "uid:65534", "own object's owner");
  const std::string data = Pattern(8192, 65534);
  if (c.Ok(WriteObject(s, mine.object().handle(), 0, data), "Write own") &&
      c.Ok(ReadObject(s, mine.object().handle(), 0, 0, &got), "Read own")) {
    c.Check(got == data, "own object reads back what was written");
  }
  std::printf("GPUMIG_E2E_CHILD_OBJECT=%s\n", mine.object().handle().c_str());
  return c.failures() == 0 ? 0 : 1;
}

TEST_F(DaemonE2eTest, OwnershipBetweenTwoUids) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to run a second uid (the identity layer's "
                    "unit tests cover the mapping)";
  }
  StartDaemon();
  Stubs& s = *stubs_;
  v1::CreateObjectResponse created;
  ASSERT_OK(CreateObject(s, kMiB, {"smem", "lmem"}, &created));
  const std::string handle = created.object().handle();
  const std::string data = Pattern(kMiB, 0);
  ASSERT_OK(WriteObject(s, handle, 0, data));

  // The child re-executes this test binary (no gRPC state crosses fork) in
  // its probe mode (ProbeAsNobody) with a minimal environment (so it never
  // touches Bazel's test outputs).
  const std::string out = dir_.File("child.out");
  std::vector<std::string> env_strings = {
      "PATH=/usr/bin:/bin",
      absl::StrCat("GPUMIG_E2E_CHILD_SOCKET=", daemon_->socket()),
      absl::StrCat("GPUMIG_E2E_CHILD_HANDLE=", handle),
      absl::StrCat("GPUMIG_E2E_CHILD_FENCE=", created.fence_id()),
      "ASAN_OPTIONS=detect_leaks=0",
  };
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string self_exe(4096, '\0');
  const ssize_t n =
      readlink("/proc/self/exe", self_exe.data(), self_exe.size());
  ASSERT_GT(n, 0);
  self_exe.resize(n);
  std::string mode = kProbeAsNobodyFlag;
  char* argv[] = {self_exe.data(), mode.data(), nullptr};
  const pid_t child = fork();
  if (child == 0) {
    const int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execve(argv[0], argv, envp.data());
    _exit(127);
  }
  ASSERT_GT(child, 0);
  int status = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (waitpid(child, &status, WNOHANG) != child) {
    ASSERT_LT(absl::Now(), deadline) << "child hung:\n" << ReadAll(out);
    absl::SleepFor(absl::Milliseconds(5));
  }
  const std::string child_out = ReadAll(out);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << child_out;
  const size_t at = child_out.find("GPUMIG_E2E_CHILD_OBJECT=");
  ASSERT_NE(at, std::string::npos);
  std::string child_handle = child_out.substr(at + 24);
  child_handle = child_handle.substr(0, child_handle.find('\n'));

  // Root's object is untouched.
  std::string got;
  ASSERT_OK(ReadObject(s, handle, 0, 0, &got));
  EXPECT_TRUE(got == data);
  // Root is admin: it sees the child's object (metadata), but even an admin
  // may not read another principal's bytes.
  v1::GetObjectRequest get;
  get.set_handle(child_handle);
  v1::Object theirs;
  ASSERT_OK(s.objects->Get(Ctx().get(), get, &theirs));
  EXPECT_EQ(theirs.owner(), "uid:65534");
  EXPECT_CODE(ReadObject(s, child_handle, 0, 0, &got), PERMISSION_DENIED);
  v1::ListObjectsRequest all;
  all.set_all_principals(true);
  v1::ListObjectsResponse list;
  ASSERT_OK(s.objects->List(Ctx().get(), all, &list));
  EXPECT_EQ(list.objects_size(), 2);
  v1::ListObjectsResponse own;
  ASSERT_OK(s.objects->List(Ctx().get(), v1::ListObjectsRequest(), &own));
  EXPECT_EQ(own.objects_size(), 1);
  // Admins may destroy any object.
  v1::DestroyObjectRequest destroy;
  destroy.set_handle(child_handle);
  v1::DestroyObjectResponse destroyed;
  ASSERT_OK(s.objects->Destroy(Ctx().get(), destroy, &destroyed));
}

TEST_F(DaemonE2eTest, FaultRpcsAreRefusedWhenDisabled) {
  StartDaemon(TestConfig("", /*fault_injection=*/false));
  Stubs& s = *stubs_;
  v1::GetInfoResponse info;
  ASSERT_OK(s.daemon->GetInfo(Ctx().get(), v1::GetInfoRequest(), &info));
  EXPECT_FALSE(info.fault_injection_enabled());
  const grpc::StatusCode expected = getuid() == 0
                                        ? grpc::StatusCode::FAILED_PRECONDITION
                                        : grpc::StatusCode::PERMISSION_DENIED;
  v1::InjectFaultRequest inject;
  inject.mutable_spec()->set_kind(v1::FAULT_KIND_WEDGE_ENGINE);
  inject.mutable_spec()->mutable_trigger()->set_always(true);
  v1::Fault fault;
  EXPECT_EQ(s.faults->Inject(Ctx().get(), inject, &fault).error_code(),
            expected);
  v1::ListFaultsResponse list;
  EXPECT_EQ(
      s.faults->List(Ctx().get(), v1::ListFaultsRequest(), &list).error_code(),
      expected);
  v1::ClearFaultsRequest clear;
  clear.set_all(true);
  v1::ClearFaultsResponse cleared;
  EXPECT_EQ(s.faults->Clear(Ctx().get(), clear, &cleared).error_code(),
            expected);
  if (getuid() == 0) {
    v1::SelfTestRequest st;
    st.set_with_faults(true);
    v1::SelfTestResponse str;
    EXPECT_CODE(s.daemon->SelfTest(Ctx().get(), st, &str), FAILED_PRECONDITION);
    // Without faults the self-test runs and passes.
    st.set_with_faults(false);
    ASSERT_OK(s.daemon->SelfTest(Ctx().get(), st, &str));
    EXPECT_TRUE(str.passed());
    EXPECT_EQ(str.violations(), 0u);
  }
}

TEST_F(DaemonE2eTest, SelfTestWithFaultsPasses) {
  if (getuid() != 0) GTEST_SKIP() << "SelfTest is admin-only";
  StartDaemon();
  v1::SelfTestRequest req;
  req.set_bytes_per_region(6 * kMiB);  // Beyond the 4 MiB aperture.
  req.set_with_faults(true);
  v1::SelfTestResponse resp;
  ASSERT_OK(stubs_->daemon->SelfTest(Ctx().get(), req, &resp));
  EXPECT_TRUE(resp.passed());
  EXPECT_EQ(resp.violations(), 0u);
  EXPECT_GT(resp.canary_bytes_written(), 0u);
  EXPECT_GT(resp.objects_checked(), 0u);
  v1::GetStatsResponse stats;
  ASSERT_OK(
      stubs_->daemon->GetStats(Ctx().get(), v1::GetStatsRequest(), &stats));
  EXPECT_EQ(stats.objects(), 0u) << "the self-test cleans up";
  v1::ListFaultsResponse faults;
  ASSERT_OK(
      stubs_->faults->List(Ctx().get(), v1::ListFaultsRequest(), &faults));
  EXPECT_EQ(faults.faults_size(), 0);
}

// ---------------------------------------------------------------------------
// Shutdown, health, TCP, config.

// A datagram socket standing in for systemd's notify socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr;
    std::memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    bind(fd_, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr));
  }
  ~NotifySocket() { close(fd_); }

  // Reads datagrams until one contains `what` or `timeout` passes.
  bool WaitFor(const std::string& what, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      struct pollfd p = {fd_, POLLIN, 0};
      const int ms = static_cast<int>(
          absl::ToInt64Milliseconds(deadline - absl::Now()) + 1);
      if (poll(&p, 1, ms) <= 0) continue;
      char buf[4096];
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) continue;
      seen_.append(buf, n).append("\n");
      if (std::string(buf, n).find(what) != std::string::npos) return true;
    }
    return false;
  }
  const std::string& seen() const { return seen_; }
  const std::string& path() const { return path_; }

 private:
  const std::string path_;
  int fd_ = -1;
  std::string seen_;
};

TEST_F(DaemonE2eTest, SigtermDrainsWaitsAndWatchesAndExitsZero) {
  NotifySocket notify(dir_.File("notify.sock"));
  StartDaemon(TestConfig(), {},
              {absl::StrCat("NOTIFY_SOCKET=", notify.path())});
  ASSERT_TRUE(notify.WaitFor("READY=1", absl::Seconds(10))) << notify.seen();
  Stubs& s = *stubs_;

  // A slow engine keeps the next fence pending for a while.
  InjectFault(s, v1::FAULT_KIND_ENGINE_LATENCY,
              [](v1::FaultSpec* f) { f->set_latency_us(500000); });
  v1::CreateObjectResponse created;
  ASSERT_OK(CreateObject(s, 4096, {"smem"}, &created));

  // A Watch stream, set up (headers received) before the signal.
  auto watch_ctx = Ctx(absl::Seconds(60));
  auto watch = s.fences->Watch(watch_ctx.get(), v1::WatchRequest());
  watch->WaitForInitialMetadata();
  absl::Notification watch_done;
  grpc::Status watch_status;
  std::thread watcher([&] {
    v1::Event e;
    while (watch->Read(&e)) {
    }
    watch_status = watch->Finish();
    watch_done.Notify();
  });

  // A Wait on the pending fence.
  absl::Notification wait_done;
  grpc::Status wait_status;
  v1::FenceStatus waited;
  std::thread waiter([&] {
    v1::WaitFenceRequest req;
    req.set_fence_id(created.fence_id());
    wait_status = s.fences->Wait(Ctx(absl::Seconds(60)).get(), req, &waited);
    wait_done.Notify();
  });

  const absl::Time signalled = absl::Now();
  std::optional<int> rc = daemon_->Stop(SIGTERM, absl::Seconds(20));
  EXPECT_EQ(rc, std::optional<int>(0)) << daemon_->Log();
  EXPECT_LT(absl::Now() - signalled, absl::Seconds(15));
  ASSERT_TRUE(wait_done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  ASSERT_TRUE(watch_done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  waiter.join();
  watcher.join();
  // The in-flight Wait either saw its fence finish during the drain, or
  // (had it not reached the daemon yet) was refused as shutting down.
  if (wait_status.ok()) {
    EXPECT_EQ(waited.state(), v1::FENCE_STATE_SIGNALED);
  } else {
    EXPECT_EQ(wait_status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << wait_status.error_message();
  }
  EXPECT_EQ(watch_status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << watch_status.error_message();
  EXPECT_TRUE(notify.WaitFor("STOPPING=1", absl::Seconds(5))) << notify.seen();
  const std::string log = daemon_->Log();
  EXPECT_THAT(log, HasSubstr("event=shutdown reason=SIGTERM"));
  EXPECT_THAT(log, HasSubstr("event=shutdown_complete fences_drained=true"));
  EXPECT_FALSE(CanConnect(daemon_->socket()));
}

TEST_F(DaemonE2eTest, HealthIsNotServingWhileTheEngineIsWedged) {
  StartDaemon();
  Stubs& s = *stubs_;
  constexpr int kServing = 1, kNotServing = 2;
  EXPECT_EQ(HealthStatus(s.channel, ""), kServing);
  EXPECT_EQ(HealthStatus(s.channel, "gpumig.v1.ObjectService"), kServing);

  v1::Fault wedge = InjectFault(s, v1::FAULT_KIND_WEDGE_ENGINE);
  EXPECT_EQ(HealthStatus(s.channel, "gpumig.v1.ObjectService"), kNotServing);
  EXPECT_EQ(HealthStatus(s.channel, ""), kServing) << "the daemon itself is up";
  v1::GetStatsResponse stats;
  ASSERT_OK(s.daemon->GetStats(Ctx().get(), v1::GetStatsRequest(), &stats));
  EXPECT_TRUE(stats.engine_wedged());
  // Work submitted to a wedged engine fails its fence; the RPC is OK.
  v1::CreateObjectResponse created;
  ASSERT_OK(CreateObject(s, 4096, {"smem"}, &created));

  v1::ClearFaultsRequest clear;
  clear.set_id(wedge.id());
  v1::ClearFaultsResponse cleared;
  ASSERT_OK(s.faults->Clear(Ctx().get(), clear, &cleared));
  EXPECT_EQ(HealthStatus(s.channel, "gpumig.v1.ObjectService"), kServing);
  EXPECT_THAT(daemon_->Log(), HasSubstr("status=NOT_SERVING"));
}

bool RunShell(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

TEST_F(DaemonE2eTest, TcpRefusesClientsWithoutACertificate) {
  if (!RunShell("command -v openssl >/dev/null 2>&1")) {
    GTEST_SKIP() << "no openssl binary to make test certificates";
  }
  const std::string d = dir_.path();
  const std::string ec =
      "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  WriteFile(dir_.File("san.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  const std::string script = absl::StrCat(
      "set -e; cd '", d, "';", "openssl req -x509 ", ec,
      " -keyout ca.key -out ca.pem -days 1 ",
      "-subj /CN=gpumig-test-ca 2>/dev/null;", "openssl req ", ec,
      " -keyout server.key -out server.csr ",
      "-subj /CN=localhost 2>/dev/null;",
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key ",
      "-CAcreateserial -out server.pem -days 1 -extfile san.ext 2>/dev/null;",
      "openssl req ", ec, " -keyout client.key -out client.csr ",
      "-subj /CN=rig-client 2>/dev/null;",
      "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key ",
      "-CAcreateserial -out client.pem -days 1 2>/dev/null");
  ASSERT_TRUE(RunShell(script)) << "openssl failed";

  StartDaemon(TestConfig(), {"--tcp_listen=127.0.0.1:0",
                             "--tls_cert=" + dir_.File("server.pem"),
                             "--tls_key=" + dir_.File("server.key"),
                             "--tls_client_ca=" + dir_.File("ca.pem")});
  // The chosen port is in the "listening" log line, written before the
  // unix socket accepted our first connection.
  const std::string log = daemon_->Log();
  const size_t at = log.find("event=listening tcp=127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << log;
  int port = 0;
  const std::string rest = log.substr(at + 30);
  ASSERT_TRUE(absl::SimpleAtoi(rest.substr(0, rest.find(' ')), &port)) << rest;
  const std::string target = absl::StrCat("127.0.0.1:", port);

  auto ping = [&](std::shared_ptr<grpc::ChannelCredentials> creds) {
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    auto stub = v1::DaemonService::NewStub(
        grpc::CreateCustomChannel(target, creds, args));
    v1::GetInfoResponse info;
    grpc::Status st =
        stub->GetInfo(Ctx(absl::Seconds(5)).get(), v1::GetInfoRequest(), &info);
    return std::make_pair(st, info);
  };
  // Plaintext: refused.
  auto plain = ping(grpc::InsecureChannelCredentials());
  EXPECT_EQ(plain.first.error_code(), grpc::StatusCode::UNAVAILABLE)
      << plain.first.error_message();
  // TLS without a client certificate: refused.
  grpc::SslCredentialsOptions anon;
  anon.pem_root_certs = ReadAll(dir_.File("ca.pem"));
  auto no_cert = ping(grpc::SslCredentials(anon));
  EXPECT_EQ(no_cert.first.error_code(), grpc::StatusCode::UNAVAILABLE)
      << no_cert.first.error_message();
  // With a certificate from the client CA: the subject is the principal.
  grpc::SslCredentialsOptions mtls = anon;
  mtls.pem_private_key = ReadAll(dir_.File("client.key"));
  mtls.pem_cert_chain = ReadAll(dir_.File("client.pem"));
  auto ok = ping(grpc::SslCredentials(mtls));
  ASSERT_TRUE(ok.first.ok()) << ok.first.error_message();
  EXPECT_EQ(ok.second.caller().name(), "CN=rig-client");
  EXPECT_EQ(ok.second.caller().uid(), 0xffffffffu);
  EXPECT_FALSE(ok.second.caller().is_admin());
}

TEST(DaemonE2eConfigTest, InvalidConfigExitsNonZeroNamingTheField) {
  TempDir dir;
  Daemon daemon(dir);
  Daemon::Options o;
  o.config = R"pb(
    regions { name: "lmem" kind: LMEM size: "4MiB" aperture: "8MiB" }
  )pb";
  EXPECT_FALSE(daemon.Start(o));
  EXPECT_EQ(daemon.exit_code(), std::optional<int>(2));
  EXPECT_THAT(daemon.Log(), HasSubstr("regions[0].aperture: larger than size"));
  // A flag overriding the file is validated the same way.
  o.config = "";
  o.flags = {"--log_level=chatty"};
  EXPECT_FALSE(daemon.Start(o));
  EXPECT_EQ(daemon.exit_code(), std::optional<int>(2));
  EXPECT_THAT(daemon.Log(), HasSubstr("log_level:"));
  o.flags = {"--backend=cuda"};
  EXPECT_FALSE(daemon.Start(o));
  EXPECT_EQ(daemon.exit_code(), std::optional<int>(1));
  EXPECT_THAT(daemon.Log(), HasSubstr("backend cuda: "));
}

}  // namespace
}  // namespace gpumig

// The test binary, or with --probe_as_nobody the child of
// OwnershipBetweenTwoUids (see ProbeAsNobody).
int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], gpumig::kProbeAsNobodyFlag) == 0) {
    return gpumig::ProbeAsNobody();
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
