// Test helpers: a minimal HTTP/1.0 GET over a loopback TCP socket (no curl,
// no HTTP library) and a parser for the Prometheus text format's samples.
#ifndef GPUMIG_DAEMON_METRICS_SCRAPE_FOR_TEST_H_
#define GPUMIG_DAEMON_METRICS_SCRAPE_FOR_TEST_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace gpumig {
namespace daemon {
namespace metrics_test {

// GET http://127.0.0.1:<port><path>; the body if the status is 200.
// UNAVAILABLE if the connection fails, INTERNAL for any other status.
inline absl::StatusOr<std::string> HttpGet(
    int port, const std::string& path = "/metrics") {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(std::strerror(errno));
  timeval tv{10, 0};  // a hung server fails the test instead of hanging it
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int e = errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect: ", std::strerror(e)));
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1:", port,
                   "\r\nConnection: close\r\n\r\n");
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n =
        send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      close(fd);
      return absl::InternalError("send failed");
    }
    sent += static_cast<size_t>(n);
  }
  std::string response;
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return absl::InternalError(absl::StrCat("recv: ", std::strerror(errno)));
    }
    response.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const size_t end = response.find("\r\n\r\n");
  if (end == std::string::npos) {
    return absl::InternalError("no end of headers in: " + response);
  }
  const std::string status_line = response.substr(0, response.find("\r\n"));
  if (status_line.find(" 200 ") == std::string::npos) {
    return absl::InternalError("HTTP status: " + status_line);
  }
  return response.substr(end + 4);
}

// Samples of a text-format body: "name{labels}" (exactly as written) ->
// value. Comment lines are skipped.
inline std::map<std::string, double> ParseSamples(absl::string_view body) {
  std::map<std::string, double> out;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    if (space == absl::string_view::npos) continue;
    double value = 0;
    absl::string_view v = line.substr(space + 1);
    if (v == "+Inf") {
      value = std::numeric_limits<double>::infinity();
    } else if (!absl::SimpleAtod(v, &value)) {
      continue;
    }
    out[std::string(line.substr(0, space))] = value;
  }
  return out;
}

// "# TYPE name type" lines: name -> type.
inline std::map<std::string, std::string> ParseTypes(absl::string_view body) {
  std::map<std::string, std::string> out;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    if (parts.size() == 4 && parts[0] == "#" && parts[1] == "TYPE") {
      out[parts[2]] = parts[3];
    }
  }
  return out;
}

}  // namespace metrics_test
}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_METRICS_SCRAPE_FOR_TEST_H_
