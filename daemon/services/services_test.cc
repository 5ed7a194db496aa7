// The gpumig.v1 services in-process: a grpc::Server with no port, reached
// through its InProcessChannel, over a MemoryManager on a small SimDevice
// configured as the daemon configures it (page_bytes 4096). No socket, no
// listener: the caller's principal comes from the "x-test-uid" metadata
// (uid 0 is an admin). Checks what a client sees: the codes docs/api.md
// promises and the field each refusal names, the fixed "permission
// denied", content order through the streams, the failsafe's fallback as
// the fence reports it, and fault creation times.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/device/sim_device.h"
#include "core/manager/memory_manager.h"
#include "daemon/services/fault_service.h"
#include "daemon/services/fence_service.h"
#include "daemon/services/object_service.h"
#include "daemon/services/rpc_env.h"
#include "gpumig/v1/faults.grpc.pb.h"
#include "gpumig/v1/fences.grpc.pb.h"
#include "gpumig/v1/objects.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace daemon {
namespace {

namespace v1 = ::gpumig::v1;
constexpr uint64_t kMiB = 1 << 20;
constexpr uint32_t kUser = 1000;
constexpr uint32_t kOther = 1001;
constexpr uint32_t kAdmin = 0;

absl::StatusOr<Principal> FromMetadata(const grpc::ServerContext& ctx) {
  auto it = ctx.client_metadata().find("x-test-uid");
  uint32_t uid = 0;
  if (it == ctx.client_metadata().end() ||
      !absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()),
                        &uid)) {
    return absl::UnauthenticatedError("no x-test-uid");
  }
  Principal p;
  p.uid = uid;
  p.name = absl::StrCat("uid:", uid);
  p.admin = uid == 0;
  return p;
}

class ServicesTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(/*faults_enabled=*/true); }
  void TearDown() override { Stop(); }

  void Start(bool faults_enabled, int max_faults = 64) {
    auto faults = std::make_unique<FaultInjector>();
    SimDeviceConfig config;
    // LMEM: 4 MiB with a 1 MiB aperture; SMEM: 4 MiB.
    config.regions.push_back(
        RegionConfig{"lmem", RegionKind::kLmem, 4 * kMiB, kMiB, 4096});
    config.regions.push_back(
        RegionConfig{"smem", RegionKind::kSmem, 4 * kMiB, 4 * kMiB, 4096});
    auto device = SimDevice::Create(std::move(config), faults.get());
    ASSERT_TRUE(device.ok()) << device.status();
    ManagerOptions options;
    options.page_bytes = kPageBytes;  // as daemon.cc
    auto manager = MemoryManager::Create(std::move(faults), *std::move(device),
                                         std::move(options));
    ASSERT_TRUE(manager.ok()) << manager.status();
    manager_ = *std::move(manager);
    ServiceOptions so;
    so.fault_injection_enabled = faults_enabled;
    so.max_faults = max_faults;
    env_ = std::make_unique<RpcEnv>(manager_.get(), FromMetadata, so);
    objects_ = std::make_unique<ObjectService>(env_.get());
    fences_ = std::make_unique<FenceService>(env_.get());
    faults_ = std::make_unique<FaultService>(env_.get());
    grpc::ServerBuilder builder;
    builder.RegisterService(objects_.get());
    builder.RegisterService(fences_.get());
    builder.RegisterService(faults_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    auto channel = server_->InProcessChannel(grpc::ChannelArguments());
    object_stub_ = v1::ObjectService::NewStub(channel);
    fence_stub_ = v1::FenceService::NewStub(channel);
    fault_stub_ = v1::FaultService::NewStub(channel);
  }
  void Stop() {
    if (server_ != nullptr) server_->Shutdown();
    server_.reset();
    faults_.reset();
    fences_.reset();
    objects_.reset();
    env_.reset();
    manager_.reset();
  }

  static std::unique_ptr<grpc::ClientContext> As(uint32_t uid) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("x-test-uid", absl::StrCat(uid));
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(30));
    return ctx;
  }
  static void ExpectField(const grpc::Status& s, grpc::StatusCode code,
                          const std::string& field) {
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_TRUE(absl::StartsWith(s.error_message(), field + ":"))
        << s.error_message();
  }

  std::string Create(uint64_t size, std::vector<std::string> placements,
                     uint32_t uid = kUser) {
    v1::CreateObjectRequest req;
    req.set_size_bytes(size);
    for (const auto& p : placements) req.add_placements(p);
    v1::CreateObjectResponse resp;
    grpc::Status s = object_stub_->Create(As(uid).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.object().handle();
  }
  grpc::Status Write(const std::string& handle, uint64_t offset,
                     const std::vector<std::string>& chunks,
                     uint32_t uid = kUser) {
    v1::WriteResponse resp;
    auto ctx = As(uid);
    auto w = object_stub_->Write(ctx.get(), &resp);
    if (chunks.empty()) {  // one message naming the object, no data
      v1::WriteRequest req;
      req.set_handle(handle);
      req.set_offset(offset);
      w->Write(req);
    }
    for (size_t i = 0; i < chunks.size(); ++i) {
      v1::WriteRequest req;
      if (i == 0) {
        req.set_handle(handle);
        req.set_offset(offset);
      }
      req.set_data(chunks[i]);
      if (!w->Write(req)) break;
    }
    w->WritesDone();
    return w->Finish();
  }
  grpc::Status Read(const std::string& handle, uint64_t offset, uint64_t length,
                    uint32_t chunk, std::string* out,
                    std::vector<uint64_t>* offsets = nullptr,
                    uint32_t uid = kUser) {
    v1::ReadRequest req;
    req.set_handle(handle);
    req.set_offset(offset);
    req.set_length(length);
    req.set_max_chunk_bytes(chunk);
    auto ctx = As(uid);
    auto r = object_stub_->Read(ctx.get(), req);
    v1::ReadResponse resp;
    out->clear();
    while (r->Read(&resp)) {
      if (offsets != nullptr) offsets->push_back(resp.offset());
      out->append(resp.data());
    }
    return r->Finish();
  }
  grpc::Status Exec(const v1::ExecRequest& req, v1::ExecResponse* resp) {
    return object_stub_->Exec(As(kUser).get(), req, resp);
  }

  std::unique_ptr<MemoryManager> manager_;
  std::unique_ptr<RpcEnv> env_;
  std::unique_ptr<ObjectService> objects_;
  std::unique_ptr<FenceService> fences_;
  std::unique_ptr<FaultService> faults_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::ObjectService::Stub> object_stub_;
  std::unique_ptr<v1::FenceService::Stub> fence_stub_;
  std::unique_ptr<v1::FaultService::Stub> fault_stub_;
};

TEST_F(ServicesTest, CreateRefusalsNameTheFieldAndCreateNothing) {
  auto create = [&](auto edit) {
    v1::CreateObjectRequest req;
    req.set_size_bytes(kMiB);
    req.add_placements("smem");
    edit(&req);
    v1::CreateObjectResponse resp;
    return object_stub_->Create(As(kUser).get(), req, &resp);
  };
  using R = v1::CreateObjectRequest;
  const auto kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
  ExpectField(create([](R* r) { r->set_size_bytes(4097); }), kInvalid,
              "size_bytes");
  ExpectField(create([](R* r) { r->set_size_bytes(0); }), kInvalid,
              "size_bytes");
  ExpectField(create([](R* r) { r->clear_placements(); }), kInvalid,
              "placements");
  ExpectField(create([](R* r) { r->add_placements("vram"); }), kInvalid,
              "placements[1]");
  ExpectField(create([](R* r) { r->set_label(std::string(257, 'a')); }),
              kInvalid, "label");
  ExpectField(create([](R* r) {
                r->set_placements(0, "lmem");
                r->set_size_bytes(2 * kMiB);
                r->set_require_cpu_access(true);
              }),
              kInvalid, "size_bytes");
  v1::ListObjectsResponse list;
  ASSERT_TRUE(
      object_stub_->List(As(kUser).get(), v1::ListObjectsRequest(), &list)
          .ok());
  EXPECT_EQ(list.objects_size(), 0);
}

TEST_F(ServicesTest, RangesBeyondTheObjectAreOutOfRangeOnEveryPath) {
  const std::string h = Create(64 << 10, {"smem"});
  const auto kOut = grpc::StatusCode::OUT_OF_RANGE;
  ExpectField(Write(h, (64 << 10) - 2, {"abcd"}), kOut, "offset");
  ExpectField(Write(h, (64 << 10) + 1, {}), kOut, "offset");  // empty too
  // A later chunk runs past the end: the first one was written (not atomic).
  ExpectField(Write(h, (64 << 10) - 6, {"xyz", "uvwx"}), kOut, "offset");
  std::string got;
  ASSERT_TRUE(Read(h, (64 << 10) - 6, 0, 0, &got).ok());
  EXPECT_EQ(got, std::string("xyz") + std::string(3, '\0'));
  ExpectField(Read(h, (64 << 10) + 1, 0, 0, &got), kOut, "offset");
  ExpectField(Read(h, 0, (64 << 10) + 1, 0, &got), kOut, "offset");
  v1::ExecRequest fill;
  fill.mutable_fill()->set_handle(h);
  fill.mutable_fill()->set_offset(64 << 10);
  fill.mutable_fill()->set_length(1);
  v1::ExecResponse resp;
  ExpectField(Exec(fill, &resp), kOut, "offset");
  v1::ExecRequest copy;
  copy.mutable_copy()->set_src_handle(h);
  copy.mutable_copy()->set_dst_handle(h);
  copy.mutable_copy()->set_dst_offset(60 << 10);
  copy.mutable_copy()->set_length(8 << 10);
  ExpectField(Exec(copy, &resp), kOut, "dst_offset");
  copy.mutable_copy()->set_dst_offset(4096);  // overlaps [0, 8 KiB)
  ExpectField(Exec(copy, &resp), grpc::StatusCode::INVALID_ARGUMENT, "copy");
  v1::ExecRequest sum;
  sum.mutable_checksum()->set_handle(h);
  sum.mutable_checksum()->set_offset((64 << 10) + 1);
  ExpectField(Exec(sum, &resp), kOut, "offset");
}

TEST_F(ServicesTest, ContentStreamsInOrderInTheChunksAsked) {
  const std::string h = Create(64 << 10, {"lmem", "smem"});
  std::string data(40000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 13);
  ASSERT_TRUE(Write(h, 100, {data.substr(0, 30000), data.substr(30000)}).ok());
  std::string got;
  std::vector<uint64_t> offsets;
  ASSERT_TRUE(Read(h, 100, data.size(), 16384, &got, &offsets).ok());
  EXPECT_EQ(got, data);
  EXPECT_EQ(offsets, (std::vector<uint64_t>{100, 100 + 16384, 100 + 32768}));
}

TEST_F(ServicesTest, AnotherPrincipalGetsOnlyPermissionDenied) {
  const std::string h = Create(4096, {"smem"});
  std::string got;
  for (uint32_t uid : {kOther, kAdmin}) {  // admins may not read content
    grpc::Status s = Read(h, 0, 0, 0, &got, nullptr, uid);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(s.error_message(), "permission denied");
    EXPECT_EQ(Write(h, 0, {"x"}, uid).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  v1::PinObjectRequest pin;
  pin.set_handle(h);
  v1::PinObjectResponse pinned;
  grpc::Status s = object_stub_->Pin(As(kOther).get(), pin, &pinned);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(s.error_message(), "permission denied");
  // Nobody at all: the resolver's UNAUTHENTICATED, before any work.
  grpc::ClientContext anonymous;
  v1::GetObjectRequest get;
  get.set_handle(h);
  v1::Object o;
  EXPECT_EQ(object_stub_->Get(&anonymous, get, &o).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(ServicesTest, FailedBlitIsAnOkMigrateWhoseFenceSaysFallback) {
  const std::string h = Create(64 << 10, {"smem", "lmem"});
  std::string data(64 << 10, 'q');
  ASSERT_TRUE(Write(h, 0, {data}).ok());
  v1::InjectFaultRequest inject;
  inject.mutable_spec()->set_kind(v1::FAULT_KIND_FAIL_BLIT);
  inject.mutable_spec()->mutable_trigger()->set_next_n(1);
  v1::Fault fault;
  ASSERT_TRUE(fault_stub_->Inject(As(kAdmin).get(), inject, &fault).ok());
  v1::MigrateObjectRequest req;
  req.set_handle(h);
  req.set_region("lmem");
  req.set_wait(true);
  v1::MigrateObjectResponse resp;
  grpc::Status s = object_stub_->Migrate(As(kUser).get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();  // the RPC reports submission
  EXPECT_EQ(resp.fence().outcome(), v1::FENCE_OUTCOME_FALLBACK_COPY);
  std::string got;
  ASSERT_TRUE(Read(h, 0, 0, 0, &got).ok());
  EXPECT_EQ(got, data);  // exact, though the blit failed
  v1::ListFaultsResponse list;
  ASSERT_TRUE(
      fault_stub_->List(As(kAdmin).get(), v1::ListFaultsRequest(), &list).ok());
  ASSERT_EQ(list.faults_size(), 1);
  EXPECT_EQ(list.faults(0).fired_count(), 1u);
  EXPECT_TRUE(list.faults(0).exhausted());
}

TEST_F(ServicesTest, FaultCreationTimesComeFromTheInjectorAndStay) {
  v1::InjectFaultRequest inject;
  inject.mutable_spec()->set_kind(v1::FAULT_KIND_BAN_MEMCPY);
  inject.mutable_spec()->mutable_trigger()->set_always(true);
  const int64_t before = absl::ToUnixNanos(absl::Now());
  v1::Fault fault;
  ASSERT_TRUE(fault_stub_->Inject(As(kAdmin).get(), inject, &fault).ok());
  const int64_t after = absl::ToUnixNanos(absl::Now());
  EXPECT_GE(fault.created_unix_nanos(), before);
  EXPECT_LE(fault.created_unix_nanos(), after);
  std::vector<FaultInfo> core = manager_->faults().List();
  ASSERT_EQ(core.size(), 1u);
  EXPECT_EQ(absl::ToUnixNanos(core[0].created), fault.created_unix_nanos());
  v1::ListFaultsResponse list;
  ASSERT_TRUE(
      fault_stub_->List(As(kAdmin).get(), v1::ListFaultsRequest(), &list).ok());
  ASSERT_EQ(list.faults_size(), 1);
  EXPECT_EQ(list.faults(0).created_unix_nanos(), fault.created_unix_nanos());
  // Non-admins are refused first.
  EXPECT_EQ(fault_stub_->Inject(As(kUser).get(), inject, &fault).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::ClearFaultsRequest clear;
  clear.set_all(true);
  v1::ClearFaultsResponse cleared;
  ASSERT_TRUE(fault_stub_->Clear(As(kAdmin).get(), clear, &cleared).ok());
  EXPECT_EQ(cleared.cleared(), 1u);
}

TEST_F(ServicesTest, TheFaultLimitIsResourceExhausted) {
  Stop();
  Start(/*faults_enabled=*/true, /*max_faults=*/2);
  v1::InjectFaultRequest inject;
  inject.mutable_spec()->set_kind(v1::FAULT_KIND_FAIL_BLIT);
  inject.mutable_spec()->mutable_trigger()->set_always(true);
  v1::Fault fault;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(fault_stub_->Inject(As(kAdmin).get(), inject, &fault).ok());
  }
  EXPECT_EQ(fault_stub_->Inject(As(kAdmin).get(), inject, &fault).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(manager_->faults().List().size(), 2u);
}

TEST_F(ServicesTest, DisabledFaultInjectionIsFailedPrecondition) {
  Stop();
  Start(/*faults_enabled=*/false);
  v1::InjectFaultRequest inject;
  inject.mutable_spec()->set_kind(v1::FAULT_KIND_FAIL_BLIT);
  inject.mutable_spec()->mutable_trigger()->set_always(true);
  v1::Fault fault;
  EXPECT_EQ(fault_stub_->Inject(As(kAdmin).get(), inject, &fault).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(manager_->faults().List().empty());
}

TEST_F(ServicesTest, DrainingRefusesNewCallsWithUnavailable) {
  const std::string h = Create(4096, {"smem"});
  env_->BeginDrain();
  v1::GetObjectRequest get;
  get.set_handle(h);
  v1::Object o;
  EXPECT_EQ(object_stub_->Get(As(kUser).get(), get, &o).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  v1::GetFenceRequest fence;
  fence.set_fence_id(1);
  v1::FenceStatus fs;
  EXPECT_EQ(fence_stub_->Get(As(kUser).get(), fence, &fs).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace daemon
}  // namespace gpumig
