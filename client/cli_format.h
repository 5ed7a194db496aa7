// Output helpers for gpumigctl: human-readable sizes, aligned text tables,
// key/value blocks, and a minimal JSON writer with stable key order.
//
// The JSON writer emits exactly the keys it is given, in the order given, so a
// command's JSON shape is fixed by its code and stays stable across runs.
// Strings are escaped per RFC 8259 (bytes that are not valid UTF-8 are
// written as \u00XX of the byte, so the output is always valid JSON).
//
// Not thread-safe; each value is used by one thread.
#ifndef GPUMIG_CLIENT_CLI_FORMAT_H_
#define GPUMIG_CLIENT_CLI_FORMAT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace gpumig::cli {

// common/bytes.h's FormatBytes: 0 -> "0 B", 1536 -> "1.5 KiB", 64 MiB ->
// "64 MiB", binary units up to TiB; one decimal unless the value is a whole
// number of the unit.
std::string FormatSize(uint64_t bytes);

// A duration for people: 1234567 ns -> "1.234ms", 3723.5 s -> "1h2m3s";
// truncated to about three digits below the leading unit.
std::string FormatNanos(int64_t nanos);

// Unix nanoseconds -> "2024-05-01T12:00:00.123Z" (UTC); 0 -> "-".
std::string FormatUnixNanos(int64_t unix_nanos);

// An aligned text table: a header row and rows of cells, columns separated by
// two spaces; numeric columns (declared with right_align) are right-aligned.
class Table {
 public:
  // `right_align[i]` right-aligns column i; missing entries mean left.
  explicit Table(std::vector<std::string> header,
                 std::vector<bool> right_align = {});

  // Adds a row; missing trailing cells print empty, extra cells are dropped.
  void AddRow(std::vector<std::string> row);

  size_t rows() const { return rows_.size(); }

  // The table, one line per row (header first), each ending in '\n'.
  // Trailing spaces are trimmed.
  std::string Render() const;

 private:
  std::vector<std::string> header_;
  std::vector<bool> right_align_;
  std::vector<std::vector<std::string>> rows_;
};

// A key/value block: "key   value" lines with values aligned.
class KeyValueBlock {
 public:
  void Add(absl::string_view key, absl::string_view value);
  std::string Render() const;

 private:
  std::vector<std::pair<std::string, std::string>> lines_;
};

// Builds one JSON value. Usage:
//   JsonWriter w;
//   w.BeginObject();
//   w.Key("handle"); w.String("obj-1");
//   w.Key("sizes"); w.BeginArray(); w.Uint(1); w.EndArray();
//   w.EndObject();
//   std::string text = w.str();
// Commas are inserted automatically. Misuse (a value without a key inside an
// object) is a programming error and is not diagnosed.
class JsonWriter {
 public:
  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();
  void Key(absl::string_view key);
  void String(absl::string_view value);
  void Uint(uint64_t value);
  void Int(int64_t value);
  void Double(double value);
  void Bool(bool value);
  void Null();

  // Shorthands for Key + value.
  void Field(absl::string_view key, absl::string_view value) {
    Key(key);
    String(value);
  }
  void Field(absl::string_view key, const char* value) {
    Key(key);
    String(value);
  }
  void FieldUint(absl::string_view key, uint64_t value) {
    Key(key);
    Uint(value);
  }
  void FieldInt(absl::string_view key, int64_t value) {
    Key(key);
    Int(value);
  }
  void FieldBool(absl::string_view key, bool value) {
    Key(key);
    Bool(value);
  }
  void FieldDouble(absl::string_view key, double value) {
    Key(key);
    Double(value);
  }
  void FieldStrings(absl::string_view key,
                    const std::vector<std::string>& values);

  const std::string& str() const { return out_; }

 private:
  void BeforeValue();

  std::string out_;
  // Per open container: whether it has at least one element.
  std::vector<bool> has_element_;
  bool after_key_ = false;
};

// `value` as a JSON string literal, quotes included (common/json.h).
std::string JsonQuote(absl::string_view value);

}  // namespace gpumig::cli

#endif  // GPUMIG_CLIENT_CLI_FORMAT_H_
