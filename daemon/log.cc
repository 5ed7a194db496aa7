#include "daemon/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace gpumig {
namespace daemon {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

absl::Mutex g_sinks_mu(absl::kConstInit);
std::vector<std::function<void(const LogRecord&)>>* g_sinks
    ABSL_GUARDED_BY(g_sinks_mu) = nullptr;

bool NeedsQuoting(absl::string_view v) {
  if (v.empty()) return true;
  for (unsigned char c : v) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) {
      return true;
    }
  }
  return false;
}

void AppendValue(std::string* out, absl::string_view v) {
  if (!NeedsQuoting(v)) {
    out->append(v.data(), v.size());
    return;
  }
  out->push_back('"');
  for (unsigned char c : v) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < ' ' || c == 0x7f) {
          static const char kHex[] = "0123456789abcdef";
          out->append("\\x");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

}  // namespace

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  for (LogLevel l :
       {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (name == LogLevelName(l)) return l;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "log level \"", name, "\" is not debug, info, warn or error"));
}

void SetLogLevel(LogLevel level) {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

std::string FormatLogLine(const LogRecord& record) {
  std::string line =
      absl::StrCat("ts=",
                   absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", record.time,
                                    absl::UTCTimeZone()),
                   " level=", LogLevelName(record.level), " event=");
  AppendValue(&line, record.event);
  for (const auto& [key, value] : record.fields) {
    line.push_back(' ');
    line.append(key);
    line.push_back('=');
    AppendValue(&line, value);
  }
  return line;
}

void Emit(const LogRecord& record) {
  std::string line = FormatLogLine(record);
  line.push_back('\n');
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = write(STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
  absl::MutexLock lock(&g_sinks_mu);
  if (g_sinks != nullptr) {
    for (const auto& sink : *g_sinks) sink(record);
  }
}

void AddLogSink(std::function<void(const LogRecord&)> sink) {
  absl::MutexLock lock(&g_sinks_mu);
  if (g_sinks == nullptr) {
    g_sinks = new std::vector<std::function<void(const LogRecord&)>>();
  }
  g_sinks->push_back(std::move(sink));
}

Log::Log(LogLevel level, absl::string_view event)
    : enabled_(LogEnabled(level)) {
  if (enabled_) {
    record_.level = level;
    record_.event = std::string(event);
  }
}

Log::~Log() {
  if (!enabled_) return;
  record_.time = absl::Now();
  Emit(record_);
}

}  // namespace daemon
}  // namespace gpumig
