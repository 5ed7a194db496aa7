// Checks that the gpumig.v1 API compiles, links, keeps its shape (services,
// methods, streaming) and follows the package's conventions (enum zero values,
// one request message per method).

#include <cctype>
#include <set>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "gpumig/v1/common.pb.h"
#include "gpumig/v1/daemon.grpc.pb.h"
#include "gpumig/v1/faults.grpc.pb.h"
#include "gpumig/v1/fences.grpc.pb.h"
#include "gpumig/v1/objects.grpc.pb.h"
#include "gpumig/v1/regions.grpc.pb.h"
#include "gtest/gtest.h"

namespace {

using ::google::protobuf::DescriptorPool;
using ::google::protobuf::EnumDescriptor;
using ::google::protobuf::FileDescriptor;
using ::google::protobuf::MethodDescriptor;
using ::google::protobuf::ServiceDescriptor;

const std::vector<std::string>& ApiFiles() {
  static const auto* files = new std::vector<std::string>{
      "gpumig/v1/common.proto", "gpumig/v1/objects.proto",
      "gpumig/v1/fences.proto", "gpumig/v1/regions.proto",
      "gpumig/v1/faults.proto", "gpumig/v1/daemon.proto"};
  return *files;
}

const FileDescriptor* File(const std::string& name) {
  return DescriptorPool::generated_pool()->FindFileByName(name);
}

// Uppercase snake case of a CamelCase name: FenceOutcome -> FENCE_OUTCOME.
std::string EnumPrefix(const std::string& camel) {
  std::string out;
  for (char c : camel) {
    if (isupper(static_cast<unsigned char>(c)) && !out.empty()) out += '_';
    out += static_cast<char>(toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

TEST(ProtoTest, EveryFileIsInPackageGpumigV1) {
  for (const std::string& name : ApiFiles()) {
    const FileDescriptor* file = File(name);
    ASSERT_NE(file, nullptr) << name;
    EXPECT_EQ(file->package(), "gpumig.v1") << name;
    EXPECT_EQ(file->syntax(), FileDescriptor::SYNTAX_PROTO3) << name;
  }
}

TEST(ProtoTest, EveryEnumStartsWithPrefixedUnspecifiedZero) {
  for (const std::string& name : ApiFiles()) {
    const FileDescriptor* file = File(name);
    ASSERT_NE(file, nullptr) << name;
    for (int i = 0; i < file->enum_type_count(); ++i) {
      const EnumDescriptor* e = file->enum_type(i);
      const std::string prefix = EnumPrefix(e->name()) + "_";
      ASSERT_GT(e->value_count(), 0) << e->full_name();
      EXPECT_EQ(e->value(0)->number(), 0) << e->full_name();
      EXPECT_EQ(e->value(0)->name(), prefix + "UNSPECIFIED") << e->full_name();
      for (int v = 0; v < e->value_count(); ++v) {
        EXPECT_EQ(e->value(v)->name().rfind(prefix, 0), 0u)
            << e->value(v)->full_name();
      }
    }
  }
}

TEST(ProtoTest, NoRequestMessageServesTwoMethods) {
  std::set<std::string> seen;
  for (const std::string& name : ApiFiles()) {
    const FileDescriptor* file = File(name);
    ASSERT_NE(file, nullptr) << name;
    for (int s = 0; s < file->service_count(); ++s) {
      const ServiceDescriptor* service = file->service(s);
      for (int m = 0; m < service->method_count(); ++m) {
        const MethodDescriptor* method = service->method(m);
        EXPECT_TRUE(seen.insert(method->input_type()->full_name()).second)
            << method->full_name() << " reuses "
            << method->input_type()->full_name();
      }
    }
  }
}

struct MethodShape {
  std::string method;  // Full name.
  bool client_streaming;
  bool server_streaming;
};

TEST(ProtoTest, ServicesHaveTheDocumentedMethods) {
  const std::vector<MethodShape> expected = {
      {"gpumig.v1.ObjectService.Create", false, false},
      {"gpumig.v1.ObjectService.Destroy", false, false},
      {"gpumig.v1.ObjectService.Get", false, false},
      {"gpumig.v1.ObjectService.List", false, false},
      {"gpumig.v1.ObjectService.Write", true, false},
      {"gpumig.v1.ObjectService.Read", false, true},
      {"gpumig.v1.ObjectService.WriteFromBuffer", false, false},
      {"gpumig.v1.ObjectService.ReadToBuffer", false, false},
      {"gpumig.v1.ObjectService.Migrate", false, false},
      {"gpumig.v1.ObjectService.Pin", false, false},
      {"gpumig.v1.ObjectService.Unpin", false, false},
      {"gpumig.v1.ObjectService.Exec", false, false},
      {"gpumig.v1.ObjectService.CreateBatch", false, false},
      {"gpumig.v1.ObjectService.MigrateBatch", false, false},
      {"gpumig.v1.ObjectService.DestroyBatch", false, false},
      {"gpumig.v1.ObjectService.ExecBatch", false, false},
      {"gpumig.v1.FenceService.Get", false, false},
      {"gpumig.v1.FenceService.Wait", false, false},
      {"gpumig.v1.FenceService.Watch", false, true},
      {"gpumig.v1.RegionService.List", false, false},
      {"gpumig.v1.RegionService.Get", false, false},
      {"gpumig.v1.RegionService.Evict", false, false},
      {"gpumig.v1.FaultService.Inject", false, false},
      {"gpumig.v1.FaultService.Clear", false, false},
      {"gpumig.v1.FaultService.List", false, false},
      {"gpumig.v1.DaemonService.Ping", false, false},
      {"gpumig.v1.DaemonService.GetInfo", false, false},
      {"gpumig.v1.DaemonService.GetStats", false, false},
      {"gpumig.v1.DaemonService.SelfTest", false, false},
  };
  int total = 0;
  for (const std::string& name : ApiFiles()) {
    const FileDescriptor* file = File(name);
    ASSERT_NE(file, nullptr) << name;
    for (int s = 0; s < file->service_count(); ++s) {
      total += file->service(s)->method_count();
    }
  }
  EXPECT_EQ(total, static_cast<int>(expected.size()));
  for (const MethodShape& shape : expected) {
    const MethodDescriptor* method =
        DescriptorPool::generated_pool()->FindMethodByName(shape.method);
    ASSERT_NE(method, nullptr) << shape.method;
    EXPECT_EQ(method->client_streaming(), shape.client_streaming)
        << shape.method;
    EXPECT_EQ(method->server_streaming(), shape.server_streaming)
        << shape.method;
  }
}

TEST(ProtoTest, ExecRequestOneofRoundTrips) {
  gpumig::v1::ExecRequest request;
  gpumig::v1::CopyOp* copy = request.mutable_copy();
  copy->set_src_handle("obj-1");
  copy->set_dst_handle("obj-2");
  copy->set_length(4096);
  request.set_wait(true);

  std::string wire;
  ASSERT_TRUE(request.SerializeToString(&wire));
  gpumig::v1::ExecRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.op_case(), gpumig::v1::ExecRequest::kCopy);
  EXPECT_EQ(parsed.copy().dst_handle(), "obj-2");
  EXPECT_EQ(parsed.copy().length(), 4096u);
  EXPECT_TRUE(parsed.wait());
}

TEST(ProtoTest, ChecksumIsAbsentUnlessSet) {
  gpumig::v1::ExecResponse response;
  EXPECT_FALSE(response.has_checksum());
  response.set_checksum(0);  // A zero hash is still a hash.
  std::string wire;
  ASSERT_TRUE(response.SerializeToString(&wire));
  gpumig::v1::ExecResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_TRUE(parsed.has_checksum());
  EXPECT_EQ(parsed.checksum(), 0u);
}

TEST(ProtoTest, FenceStatusRoundTrips) {
  gpumig::v1::FenceStatus status;
  status.set_fence_id(7);
  status.set_state(gpumig::v1::FENCE_STATE_SIGNALED);
  status.set_outcome(gpumig::v1::FENCE_OUTCOME_FALLBACK_COPY);
  status.set_engine_error_code(13);  // INTERNAL, consumed by the fallback.
  std::string wire;
  ASSERT_TRUE(status.SerializeToString(&wire));
  gpumig::v1::FenceStatus parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.outcome(), gpumig::v1::FENCE_OUTCOME_FALLBACK_COPY);
  EXPECT_EQ(parsed.error_code(), 0);
  EXPECT_EQ(parsed.engine_error_code(), 13);
}

}  // namespace
