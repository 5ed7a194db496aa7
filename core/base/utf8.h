// UTF-8 validation for strings that travel in proto3 `string` fields:
// protobuf refuses to parse a message whose string field is not valid UTF-8,
// so both ends check first and name the field instead.
#ifndef GPUMIG_CORE_BASE_UTF8_H_
#define GPUMIG_CORE_BASE_UTF8_H_

#include "absl/strings/string_view.h"

namespace gpumig {

// Well-formed UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
bool IsUtf8(absl::string_view s);

}  // namespace gpumig

#endif  // GPUMIG_CORE_BASE_UTF8_H_
