// JSON string literals (RFC 8259), one escaper for gpumigctl's --json output
// and the benchmarks' JSON lines.
//
// '"' and '\\' are escaped, \n \r \t by name, every other control character
// (and DEL) as \u00XX; well-formed UTF-8 passes through; a byte that is not
// part of well-formed UTF-8 is written as \u00XX of the byte (its Latin-1
// code point), so the output is always valid JSON, whatever the input.
//
// Thread-safe: every function is pure.
#ifndef GPUMIG_COMMON_JSON_H_
#define GPUMIG_COMMON_JSON_H_

#include <string>

#include "absl/strings/string_view.h"

namespace gpumig {

// `value` escaped for use between the quotes of a JSON string.
std::string JsonEscape(absl::string_view value);

// `value` as a JSON string literal, quotes included.
std::string JsonQuote(absl::string_view value);

}  // namespace gpumig

#endif  // GPUMIG_COMMON_JSON_H_
