#include "common/json.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/utf8.h"

namespace gpumig {

std::string JsonEscape(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size();) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        ++i;
        continue;
      case '\\':
        out += "\\\\";
        ++i;
        continue;
      case '\n':
        out += "\\n";
        ++i;
        continue;
      case '\r':
        out += "\\r";
        ++i;
        continue;
      case '\t':
        out += "\\t";
        ++i;
        continue;
      default:
        break;
    }
    const size_t n = c < 0x20 || c == 0x7F ? 0 : Utf8SequenceLength(value, i);
    if (n == 0) {
      // A control character, or a byte that is not UTF-8: keep it visible
      // as its Latin-1 code point.
      absl::StrAppendFormat(&out, "\\u%04x", c);
      ++i;
      continue;
    }
    out.append(value.data() + i, n);
    i += n;
  }
  return out;
}

std::string JsonQuote(absl::string_view value) {
  return absl::StrCat("\"", JsonEscape(value), "\"");
}

}  // namespace gpumig
