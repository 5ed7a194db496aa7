#include "common/hostport.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace gpumig {

std::string HostPort::ToString() const {
  return bracketed ? absl::StrCat("[", host, "]:", port)
                   : absl::StrCat(host, ":", port);
}

absl::StatusOr<HostPort> SplitHostPort(absl::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError("no port");
  }
  absl::string_view host = address.substr(0, colon);
  const absl::string_view port = address.substr(colon + 1);
  if (port.empty() || port.size() > 5) {
    return absl::InvalidArgumentError("bad port");
  }
  uint32_t value = 0;
  for (char c : port) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError("bad port");
    }
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) return absl::InvalidArgumentError("bad port");
  if (host.empty()) return absl::InvalidArgumentError("no host");
  HostPort out;
  out.port = static_cast<uint16_t>(value);
  if (absl::ConsumePrefix(&host, "[")) {
    if (!absl::ConsumeSuffix(&host, "]")) {
      return absl::InvalidArgumentError("unclosed [");
    }
    if (host.find(':') == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          "brackets around a host that is not IPv6");
    }
    out.bracketed = true;
  } else if (host.find(':') != absl::string_view::npos) {
    return absl::InvalidArgumentError("an IPv6 address needs brackets");
  }
  if (host.find_first_of("[]") != absl::string_view::npos) {
    return absl::InvalidArgumentError("a stray bracket");
  }
  out.host = std::string(host);
  return out;
}

}  // namespace gpumig
