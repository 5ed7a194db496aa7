#include "daemon/services/handles.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "daemon/services/status_util.h"

namespace gpumig {
namespace daemon {
namespace {

// A decimal without sign, leading zero or overflow, non-zero.
bool ParseId(absl::string_view digits, uint64_t* id) {
  if (digits.empty() || digits.size() > 20 || digits[0] == '0') return false;
  for (char c : digits) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return absl::SimpleAtoi(digits, id) && *id != 0;
}

}  // namespace

std::string FormatHandle(uint64_t object_id) {
  return absl::StrCat("obj-", object_id);
}

absl::StatusOr<uint64_t> ParseHandle(absl::string_view field,
                                     absl::string_view handle) {
  if (handle.empty()) return FieldError(field, "required");
  uint64_t id = 0;
  if (handle.size() > kMaxHandleBytes || !absl::StartsWith(handle, "obj-") ||
      !ParseId(handle.substr(4), &id)) {
    return FieldError(field, "malformed handle");
  }
  return id;
}

std::string FormatPageToken(bool all_principals, uint64_t last_id) {
  return absl::StrCat("p", all_principals ? 1 : 0, "-", last_id);
}

absl::StatusOr<uint64_t> ParsePageToken(absl::string_view token,
                                        bool all_principals) {
  uint64_t id = 0;
  if (token.size() < 4 || token[0] != 'p' ||
      (token[1] != '0' && token[1] != '1') || token[2] != '-' ||
      !ParseId(token.substr(3), &id)) {
    return FieldError("page_token", "not a token from a previous List");
  }
  if ((token[1] == '1') != all_principals) {
    return FieldError("page_token",
                      "from a List with a different all_principals");
  }
  return id;
}

}  // namespace daemon
}  // namespace gpumig
