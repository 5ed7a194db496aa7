#include "proto/enum_names.h"

#include <vector>

#include "gpumig/v1/common.pb.h"
#include "gpumig/v1/faults.pb.h"
#include "gpumig/v1/fences.pb.h"
#include "gtest/gtest.h"

namespace gpumig::enums {
namespace {

namespace v1 = ::gpumig::v1;

TEST(EnumNamesTest, ShortNameDropsTheEnumsPrefix) {
  EXPECT_EQ(ShortName(v1::FENCE_KIND_CLEAR), "CLEAR");
  EXPECT_EQ(ShortName(v1::FENCE_OUTCOME_FALLBACK_DEVICE_COPY),
            "FALLBACK_DEVICE_COPY");
  EXPECT_EQ(ShortName(v1::FAULT_KIND_FAIL_WORK_ALLOCATION),
            "FAIL_WORK_ALLOCATION");
  EXPECT_EQ(ShortName(v1::EVENT_KIND_UNKNOWN_STATE), "UNKNOWN_STATE");
  EXPECT_EQ(ShortName(v1::FENCE_STATE_UNSPECIFIED), "UNSPECIFIED");
}

TEST(EnumNamesTest, ShortNameIsEmptyAndTerminatedForNumbersWithoutAValue) {
  EXPECT_EQ(ShortName(static_cast<v1::FaultKind>(99)), "");
  const absl::string_view name = ShortName(v1::FAULT_KIND_BAN_MEMCPY);
  EXPECT_EQ(name.data()[name.size()], '\0');
}

TEST(EnumNamesTest, FromShortNameIsExactAndNeverTheZeroValue) {
  EXPECT_EQ(FromShortName<v1::FaultKind>("ENGINE_LATENCY"),
            v1::FAULT_KIND_ENGINE_LATENCY);
  EXPECT_EQ(FromShortName<v1::FaultKind>("engine_latency"), std::nullopt);
  EXPECT_EQ(FromShortName<v1::FaultKind>("UNSPECIFIED"), std::nullopt);
  EXPECT_EQ(FromShortName<v1::FaultKind>(""), std::nullopt);
}

TEST(EnumNamesTest, ValuesListsEveryValueButZeroInDeclarationOrder) {
  EXPECT_EQ(
      Values<v1::FenceKind>(),
      (std::vector<v1::FenceKind>{v1::FENCE_KIND_CLEAR, v1::FENCE_KIND_MIGRATE,
                                  v1::FENCE_KIND_EVICT, v1::FENCE_KIND_EXEC,
                                  v1::FENCE_KIND_ARRAY}));
}

enum class Color { kUnspecified, kRed, kBlue, kLocalOnly };

constexpr EnumPair<Color, v1::FenceState> kColors[] = {
    {Color::kRed, v1::FENCE_STATE_PENDING},
    {Color::kBlue, v1::FENCE_STATE_SIGNALED},
};

TEST(EnumNamesTest, PairTablesMapBothWaysWithFallbacks) {
  static_assert(ProtoOf(kColors, Color::kBlue) == v1::FENCE_STATE_SIGNALED);
  EXPECT_EQ(ProtoOf(kColors, Color::kRed), v1::FENCE_STATE_PENDING);
  EXPECT_EQ(ProtoOf(kColors, Color::kLocalOnly), v1::FENCE_STATE_UNSPECIFIED);
  EXPECT_EQ(LocalOf(kColors, v1::FENCE_STATE_SIGNALED, Color::kUnspecified),
            Color::kBlue);
  EXPECT_EQ(
      LocalOf(kColors, static_cast<v1::FenceState>(7), Color::kUnspecified),
      Color::kUnspecified);
}

}  // namespace
}  // namespace gpumig::enums
