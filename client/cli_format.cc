#include "client/cli_format.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gpumig::cli {

std::string FormatSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  uint64_t divisor = 1;
  while (unit < 4 && bytes >= divisor * 1024) {
    divisor *= 1024;
    ++unit;
  }
  if (bytes % divisor == 0) {
    return absl::StrCat(bytes / divisor, " ", kUnits[unit]);
  }
  double value = static_cast<double>(bytes) / static_cast<double>(divisor);
  std::string text = absl::StrFormat("%.1f", value);
  // 1023.96 KiB would print as "1024.0 KiB"; keep it honest but short.
  return absl::StrCat(text, " ", kUnits[unit]);
}

std::string FormatNanos(int64_t nanos) {
  absl::Duration d = absl::Nanoseconds(nanos);
  absl::Duration magnitude = d < absl::ZeroDuration() ? -d : d;
  // Keep about three significant digits below the leading unit.
  if (magnitude >= absl::Hours(1)) {
    d = absl::Trunc(d, absl::Seconds(1));
  } else if (magnitude >= absl::Seconds(1)) {
    d = absl::Trunc(d, absl::Milliseconds(1));
  } else if (magnitude >= absl::Milliseconds(1)) {
    d = absl::Trunc(d, absl::Microseconds(1));
  }
  return absl::FormatDuration(d);
}

std::string FormatUnixNanos(int64_t unix_nanos) {
  if (unix_nanos == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ",
                          absl::FromUnixNanos(unix_nanos), absl::UTCTimeZone());
}

Table::Table(std::vector<std::string> header, std::vector<bool> right_align)
    : header_(std::move(header)), right_align_(std::move(right_align)) {
  right_align_.resize(header_.size(), false);
}

void Table::AddRow(std::vector<std::string> row) {
  row.resize(header_.size());
  rows_.push_back(std::move(row));
}

std::string Table::Render() const {
  std::vector<size_t> width(header_.size(), 0);
  for (size_t c = 0; c < header_.size(); ++c) width[c] = header_[c].size();
  for (const auto& row : rows_) {
    for (size_t c = 0; c < row.size(); ++c) {
      width[c] = std::max(width[c], row[c].size());
    }
  }
  auto render_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      if (c > 0) line += "  ";
      std::string pad(width[c] - row[c].size(), ' ');
      if (right_align_[c]) {
        absl::StrAppend(&line, pad, row[c]);
      } else {
        absl::StrAppend(&line, row[c], pad);
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    line += '\n';
    return line;
  };
  std::string out = render_row(header_);
  for (const auto& row : rows_) out += render_row(row);
  return out;
}

void KeyValueBlock::Add(absl::string_view key, absl::string_view value) {
  lines_.emplace_back(std::string(key), std::string(value));
}

std::string KeyValueBlock::Render() const {
  size_t width = 0;
  for (const auto& [key, value] : lines_) width = std::max(width, key.size());
  std::string out;
  for (const auto& [key, value] : lines_) {
    std::string line =
        absl::StrCat(key, std::string(width - key.size() + 2, ' '), value);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if invalid.
size_t Utf8SequenceLength(absl::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n;
  uint32_t min;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  uint32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

std::string JsonQuote(absl::string_view value) {
  std::string out = "\"";
  for (size_t i = 0; i < value.size();) {
    unsigned char c = static_cast<unsigned char>(value[i]);
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
    if (c < 0x20 || c == 0x7F) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
      ++i;
      continue;
    }
    size_t n = Utf8SequenceLength(value, i);
    if (n == 0) {
      // Not UTF-8: keep the byte visible as its Latin-1 code point.
      absl::StrAppendFormat(&out, "\\u%04x", c);
      ++i;
      continue;
    }
    out.append(value.data() + i, n);
    i += n;
  }
  out += "\"";
  return out;
}

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!has_element_.empty()) {
    if (has_element_.back()) out_ += ",";
    has_element_.back() = true;
  }
}

void JsonWriter::BeginObject() {
  BeforeValue();
  out_ += "{";
  has_element_.push_back(false);
}

void JsonWriter::EndObject() {
  out_ += "}";
  has_element_.pop_back();
}

void JsonWriter::BeginArray() {
  BeforeValue();
  out_ += "[";
  has_element_.push_back(false);
}

void JsonWriter::EndArray() {
  out_ += "]";
  has_element_.pop_back();
}

void JsonWriter::Key(absl::string_view key) {
  BeforeValue();
  absl::StrAppend(&out_, JsonQuote(key), ":");
  after_key_ = true;
}

void JsonWriter::String(absl::string_view value) {
  BeforeValue();
  out_ += JsonQuote(value);
}

void JsonWriter::Uint(uint64_t value) {
  BeforeValue();
  absl::StrAppend(&out_, value);
}

void JsonWriter::Int(int64_t value) {
  BeforeValue();
  absl::StrAppend(&out_, value);
}

void JsonWriter::Double(double value) {
  BeforeValue();
  if (!std::isfinite(value)) {
    out_ += "null";
    return;
  }
  absl::StrAppendFormat(&out_, "%.17g", value);
}

void JsonWriter::Bool(bool value) {
  BeforeValue();
  out_ += value ? "true" : "false";
}

void JsonWriter::Null() {
  BeforeValue();
  out_ += "null";
}

void JsonWriter::FieldStrings(absl::string_view key,
                              const std::vector<std::string>& values) {
  Key(key);
  BeginArray();
  for (const std::string& v : values) String(v);
  EndArray();
}

}  // namespace gpumig::cli
