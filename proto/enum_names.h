// One home for the gpumig.v1 enums on both ends: their names come from the
// .proto itself, and each side maps its own C++ enum to a proto enum through
// one table of pairs, used in both directions.
//
// Names. A value's *short name* is its wire name without the enum's prefix:
// FENCE_KIND_CLEAR -> "CLEAR", FAULT_KIND_FAIL_BLIT -> "FAIL_BLIT". The
// prefix is the name of the enum's 0 value less "UNSPECIFIED" (every
// gpumig.v1 enum's 0 value is <PREFIX>UNSPECIFIED), so the value 0 is
// "UNSPECIFIED". What gpumigctl prints and the client library's *Name()
// functions return is this; the core's fault-kind names are its lower case.
//
// Tables. A side (daemon: core enums; client: the library's enums) lists one
// EnumPair per value it knows, never the proto's 0 value:
//   constexpr enums::EnumPair<FenceKind, v1::FenceKind> kFenceKinds[] = {
//       {FenceKind::kClear, v1::FENCE_KIND_CLEAR}, ...};
//   v1::FenceKind p = enums::ProtoOf(kFenceKinds, FenceKind::kClear);
//   FenceKind k = enums::LocalOf(kFenceKinds, p, FenceKind::kUnspecified);
// A local value missing from the table maps to the proto's 0 value; a proto
// value missing from it (a newer peer) maps to the caller's fallback.
//
// Thread-safe: pure functions over constant data (the descriptors are built
// once by protobuf). Depends only on the generated code and absl.
#ifndef GPUMIG_PROTO_ENUM_NAMES_H_
#define GPUMIG_PROTO_ENUM_NAMES_H_

#include <cstddef>
#include <optional>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/generated_enum_reflection.h"

namespace gpumig::enums {

template <typename Local, typename Proto>
struct EnumPair {
  Local local;
  Proto proto;
};

// The proto value paired with `v`; the proto's 0 value if none is.
template <typename Local, typename Proto, size_t N>
constexpr Proto ProtoOf(const EnumPair<Local, Proto> (&table)[N], Local v) {
  for (const EnumPair<Local, Proto>& p : table) {
    if (p.local == v) return p.proto;
  }
  return static_cast<Proto>(0);
}

// The local value paired with `v`; `fallback` if none is.
template <typename Local, typename Proto, size_t N>
constexpr Local LocalOf(const EnumPair<Local, Proto> (&table)[N], Proto v,
                        Local fallback) {
  for (const EnumPair<Local, Proto>& p : table) {
    if (p.proto == v) return p.local;
  }
  return fallback;
}

// The short name of value `number` of enum `d`; "" if no value has that
// number. The view points into the descriptor (it lives as long as the
// process) and ends where the descriptor's name ends, so data() is
// NUL-terminated.
absl::string_view ShortName(const google::protobuf::EnumDescriptor* d,
                            int number);

template <typename Proto>
absl::string_view ShortName(Proto v) {
  return ShortName(google::protobuf::GetEnumDescriptor<Proto>(),
                   static_cast<int>(v));
}

// The value of enum `d` whose short name is exactly `name` (upper case, as
// ShortName returns it); never the 0 value. nullopt if none.
std::optional<int> FromShortName(const google::protobuf::EnumDescriptor* d,
                                 absl::string_view name);

template <typename Proto>
std::optional<Proto> FromShortName(absl::string_view name) {
  std::optional<int> n =
      FromShortName(google::protobuf::GetEnumDescriptor<Proto>(), name);
  if (!n.has_value()) return std::nullopt;
  return static_cast<Proto>(*n);
}

// Every value of the enum but the 0 value, in declaration order.
template <typename Proto>
std::vector<Proto> Values() {
  const google::protobuf::EnumDescriptor* d =
      google::protobuf::GetEnumDescriptor<Proto>();
  std::vector<Proto> out;
  for (int i = 0; i < d->value_count(); ++i) {
    if (d->value(i)->number() != 0) {
      out.push_back(static_cast<Proto>(d->value(i)->number()));
    }
  }
  return out;
}

}  // namespace gpumig::enums

#endif  // GPUMIG_PROTO_ENUM_NAMES_H_
