#include "proto/enum_names.h"

#include <string>

#include "absl/strings/strip.h"

namespace gpumig::enums {
namespace {

constexpr absl::string_view kUnspecified = "UNSPECIFIED";

// "FENCE_KIND_" for FenceKind: its 0 value's name less "UNSPECIFIED"; ""
// where the 0 value is not named so.
absl::string_view Prefix(const google::protobuf::EnumDescriptor* d) {
  const google::protobuf::EnumValueDescriptor* zero = d->FindValueByNumber(0);
  if (zero == nullptr) return "";
  absl::string_view name = zero->name();
  if (!absl::ConsumeSuffix(&name, kUnspecified)) return "";
  return name;
}

}  // namespace

absl::string_view ShortName(const google::protobuf::EnumDescriptor* d,
                            int number) {
  const google::protobuf::EnumValueDescriptor* v = d->FindValueByNumber(number);
  if (v == nullptr) return "";
  absl::string_view name = v->name();
  absl::ConsumePrefix(&name, Prefix(d));
  return name;
}

std::optional<int> FromShortName(const google::protobuf::EnumDescriptor* d,
                                 absl::string_view name) {
  for (int i = 0; i < d->value_count(); ++i) {
    const int number = d->value(i)->number();
    if (number != 0 && ShortName(d, number) == name) return number;
  }
  return std::nullopt;
}

}  // namespace gpumig::enums
