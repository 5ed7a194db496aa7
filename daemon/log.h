// gpumigd's log: one line of key=value pairs per event, on stderr (journald
// keeps it under systemd), e.g.
//
//   ts=2024-05-01T12:00:00.123456Z level=info event=listening
//   socket=/run/gpumig/gpumig.sock
//
// Values with spaces, quotes, '=' or control characters are double-quoted
// with Go-style escapes, so a line always splits back into its pairs.
//
// Extending: every line passes through Emit(const LogRecord&); AddLogSink()
// registers more consumers (a metrics exporter, a test) beside stderr.
//
// Thread-safe: a line is written with one write(2).
#ifndef GPUMIG_DAEMON_LOG_H_
#define GPUMIG_DAEMON_LOG_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gpumig {
namespace daemon {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

absl::string_view LogLevelName(LogLevel level);
// "debug", "info", "warn" or "error"; INVALID_ARGUMENT otherwise.
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);

// Lines below this level are dropped. Default kInfo.
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

struct LogRecord {
  absl::Time time;
  LogLevel level = LogLevel::kInfo;
  std::string event;
  std::vector<std::pair<std::string, std::string>> fields;
};

// Formats `record` as one line (without the newline).
std::string FormatLogLine(const LogRecord& record);
// Writes `record` to stderr and hands it to every sink.
void Emit(const LogRecord& record);
// Sinks run on the logging thread and must not block or log.
void AddLogSink(std::function<void(const LogRecord&)> sink);

// Builds one line and emits it when destroyed:
//   Log(LogLevel::kInfo, "listening").Kv("socket", path);
class Log {
 public:
  Log(LogLevel level, absl::string_view event);
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;
  ~Log();

  template <typename T>
  Log& Kv(absl::string_view key, const T& value) {
    if (enabled_) record_.fields.emplace_back(key, absl::StrCat(value));
    return *this;
  }
  Log& Kv(absl::string_view key, bool value) {
    if (enabled_) record_.fields.emplace_back(key, value ? "true" : "false");
    return *this;
  }

 private:
  const bool enabled_;
  LogRecord record_;
};

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_LOG_H_
