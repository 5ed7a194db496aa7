// The client library's enum names against the gpumig.v1 enums: a name the
// library prints or parses is the wire value's short name, and the library
// knows every fault and event kind the proto has.
#include <string>

#include "absl/strings/ascii.h"
#include "client/gpumig_client.h"
#include "gpumig/v1/faults.pb.h"
#include "gpumig/v1/fences.pb.h"
#include "gtest/gtest.h"
#include "proto/enum_names.h"

namespace gpumig::client {
namespace {

namespace v1 = ::gpumig::v1;

TEST(ClientEnumsTest, EveryProtoFaultKindParsesAndPrintsItsShortName) {
  for (v1::FaultKind p : enums::Values<v1::FaultKind>()) {
    const std::string name(enums::ShortName(p));
    absl::StatusOr<FaultKind> k = ParseFaultKind(absl::AsciiStrToLower(name));
    ASSERT_TRUE(k.ok()) << name << ": " << k.status();
    EXPECT_EQ(FaultKindName(*k), name);
  }
  EXPECT_EQ(AllFaultKinds().size(), enums::Values<v1::FaultKind>().size());
  EXPECT_STREQ(FaultKindName(FaultKind::kUnspecified), "UNSPECIFIED");
}

TEST(ClientEnumsTest, EveryProtoEventKindParsesAndPrintsItsShortName) {
  for (v1::EventKind p : enums::Values<v1::EventKind>()) {
    const std::string name(enums::ShortName(p));
    absl::StatusOr<EventKind> k = ParseEventKind(name);
    ASSERT_TRUE(k.ok()) << name << ": " << k.status();
    EXPECT_EQ(EventKindName(*k), name);
  }
}

TEST(ClientEnumsTest, UnknownNamesListTheKnownOnesInWireOrder) {
  absl::StatusOr<FenceKind> k = ParseFenceKind("array");
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().message(),
            "unknown operation 'array' (one of clear, migrate, evict, exec)");
  EXPECT_EQ(*ParseFenceKind("copy"), FenceKind::kMigrate);
}

}  // namespace
}  // namespace gpumig::client
