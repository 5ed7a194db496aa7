// UTF-8 validation, one decoder for every layer: strings that travel in
// proto3 `string` fields (protobuf refuses to parse a message whose string
// field is not valid UTF-8, so both ends check first and name the field
// instead) and text gpumigctl escapes for JSON.
//
// Well-formed means RFC 3629: no overlong forms, no surrogates (U+D800 to
// U+DFFF), nothing past U+10FFFF, no 5- or 6-byte forms.
//
// Thread-safe: every function is pure.
#ifndef GPUMIG_COMMON_UTF8_H_
#define GPUMIG_COMMON_UTF8_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace gpumig {

// The length (1 to 4) of the well-formed UTF-8 sequence that starts at
// s[i], or 0 where none does. Precondition: i < s.size().
size_t Utf8SequenceLength(absl::string_view s, size_t i);

// Whether all of `s` is well-formed UTF-8 (the empty string is).
bool IsUtf8(absl::string_view s);

}  // namespace gpumig

#endif  // GPUMIG_COMMON_UTF8_H_
