#include "core/fault/fault_kind.h"

#include <set>
#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

TEST(FaultKindTest, EveryKindHasOneDistinctNameThatParsesBack) {
  std::set<std::string> names;
  for (const FaultKindEntry& k : kFaultKinds) {
    EXPECT_EQ(FaultKindName(k.kind), k.name);
    absl::StatusOr<FaultKind> parsed = ParseFaultKind(k.name);
    ASSERT_TRUE(parsed.ok()) << k.name;
    EXPECT_EQ(*parsed, k.kind);
    names.insert(k.name);
  }
  EXPECT_EQ(names.size(), kNumFaultKinds);
  EXPECT_EQ(FaultKindName(FaultKind::kEngineLatency), "engine_latency");
  EXPECT_EQ(FaultKindName(static_cast<FaultKind>(99)), "unknown");
}

TEST(FaultKindTest, UnknownNameListsEveryKind) {
  absl::StatusOr<FaultKind> k = ParseFaultKind("FAIL_BLIT");
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(k.status().message(),
            "unknown fault kind \"FAIL_BLIT\" (expected fail_blit, fail_clear, "
            "fail_work_allocation, ban_memcpy, wedge_engine or "
            "engine_latency)");
}

}  // namespace
}  // namespace gpumig
