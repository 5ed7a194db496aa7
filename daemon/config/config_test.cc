#include "daemon/config/config.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace daemon {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

absl::StatusOr<Config> FromText(const std::string& text) {
  absl::StatusOr<DaemonConfig> parsed = ParseConfigText(text, "test.textproto");
  if (!parsed.ok()) return parsed.status();
  return ValidateConfig(*parsed);
}

// The message of a config that must be refused with INVALID_ARGUMENT.
std::string ErrorOf(const std::string& text) {
  absl::StatusOr<Config> c = FromText(text);
  EXPECT_FALSE(c.ok()) << text;
  if (c.ok()) return "";
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(c.status().message());
}

TEST(ConfigTest, EmptyConfigGivesDefaults) {
  absl::StatusOr<Config> c = FromText("");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->backend, "sim");
  ASSERT_EQ(c->regions.size(), 2u);
  EXPECT_EQ(c->regions[0].name, "lmem");
  EXPECT_TRUE(c->regions[0].lmem);
  EXPECT_EQ(c->regions[0].size, 256u << 20);
  EXPECT_EQ(c->regions[0].aperture, 64u << 20);
  EXPECT_EQ(c->regions[1].name, "smem");
  EXPECT_EQ(c->regions[1].size, 512u << 20);
  EXPECT_EQ(c->socket_path, "/run/gpumig/gpumig.sock");
  EXPECT_EQ(c->socket_mode, 0660u);
  EXPECT_FALSE(c->enable_fault_injection);
  EXPECT_EQ(c->log_level, "info");
  EXPECT_EQ(c->fence_history, 4096u);
  EXPECT_EQ(c->work_threads, 2u);
  EXPECT_EQ(c->shutdown_grace, absl::Seconds(5));
  EXPECT_TRUE(c->tcp_address.empty());
}

TEST(ConfigTest, FullConfigParses) {
  absl::StatusOr<Config> c = FromText(R"pb(
    backend: "sim"
    regions { name: "lmem" kind: LMEM size: "16MiB" aperture: "4 MiB" }
    regions { name: "smem" kind: SMEM size_bytes: 33554432 }
    listeners {
      unix_socket { path: "/tmp/x.sock" mode: "0666" group: "root" }
      tcp {
        address: "127.0.0.1:0"
        tls_cert: "c.pem"
        tls_key: "k.pem"
        tls_client_ca: "ca.pem"
        admin_subjects: "CN=rig"
      }
    }
    admin_group: "root"
    quotas { principal: "uid:1000" size: "1GiB" }
    quotas { principal: "CN=rig" bytes: 4096 }
    default_quota: "64MiB"
    enable_fault_injection: true
    log_level: "debug"
    fence_history: 100
    work_threads: 4
    shutdown_grace_ms: 250
  )pb");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->regions[0].size, 16u << 20);
  EXPECT_EQ(c->regions[0].aperture, 4u << 20);
  EXPECT_EQ(c->regions[1].size, 32u << 20);
  EXPECT_EQ(c->regions[1].aperture, 32u << 20);
  EXPECT_EQ(c->socket_path, "/tmp/x.sock");
  EXPECT_EQ(c->socket_mode, 0666u);
  EXPECT_EQ(c->tcp_address, "127.0.0.1:0");
  EXPECT_EQ(c->admin_subjects, std::vector<std::string>{"CN=rig"});
  EXPECT_EQ(c->quotas.at("uid:1000"), 1ull << 30);
  EXPECT_EQ(c->quotas.at("CN=rig"), 4096u);
  EXPECT_EQ(c->default_quota, 64u << 20);
  EXPECT_TRUE(c->enable_fault_injection);
  EXPECT_EQ(c->shutdown_grace, absl::Milliseconds(250));
  EXPECT_FALSE(c->Summary().empty());
}

TEST(ConfigTest, SyntaxErrorNamesLineAndField) {
  absl::StatusOr<Config> c = FromText("backend: \"sim\"\nregionz { }\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()),
              StartsWith("test.textproto:2:"));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("regionz"));
}

TEST(ConfigTest, ApertureLargerThanSizeNamesTheRegion) {
  EXPECT_THAT(
      ErrorOf(R"pb(
        regions { name: "smem" kind: SMEM size: "8MiB" }
        regions { name: "lmem2" kind: LMEM size: "4MiB" aperture: "8MiB" }
      )pb"),
      HasSubstr("regions[1].kind"));  // LMEM after SMEM
  EXPECT_THAT(
      ErrorOf(R"pb(
        regions { name: "lmem" kind: LMEM size: "4MiB" }
        regions { name: "lmem2" kind: LMEM size: "4MiB" aperture: "8MiB" }
      )pb"),
      StartsWith("regions[1].aperture: larger than size"));
}

TEST(ConfigTest, RegionErrorsNameTheField) {
  EXPECT_THAT(ErrorOf(R"pb(regions { kind: LMEM size: "4MiB" })pb"),
              StartsWith("regions[0].name: required"));
  EXPECT_THAT(
      ErrorOf(R"pb(regions { name: "Bad Name" kind: LMEM size: "4MiB" })pb"),
      StartsWith("regions[0].name:"));
  EXPECT_THAT(ErrorOf(R"pb(regions { name: "a" size: "4MiB" })pb"),
              StartsWith("regions[0].kind:"));
  EXPECT_THAT(ErrorOf(R"pb(regions { name: "a" kind: LMEM })pb"),
              StartsWith("regions[0].size: required"));
  EXPECT_THAT(
      ErrorOf(R"pb(regions { name: "a" kind: LMEM size_bytes: 5000 })pb"),
      StartsWith("regions[0].size: 5000 bytes is not a multiple"));
  EXPECT_THAT(ErrorOf(R"pb(regions {
                             name: "a"
                             kind: LMEM
                             size: "4MiB"
                             size_bytes: 4096
                           })pb"),
              StartsWith("regions[0].size: set either"));
  EXPECT_THAT(ErrorOf(R"pb(regions { name: "a" kind: LMEM size: "4MB" })pb"),
              StartsWith("regions[0].size:"));
  EXPECT_THAT(ErrorOf(R"pb(
                regions { name: "a" kind: LMEM size: "4MiB" }
                regions { name: "a" kind: SMEM size: "4MiB" }
              )pb"),
              StartsWith("regions[1].name:"));
  EXPECT_THAT(ErrorOf(R"pb(regions {
                             name: "s"
                             kind: SMEM
                             size: "8MiB"
                             aperture: "4MiB"
                           })pb"),
              StartsWith("regions[0].aperture:"));
  EXPECT_THAT(ErrorOf(R"pb(regions {
                             name: "a"
                             kind: LMEM
                             size: "4MiB"
                             aperture_bytes: 100
                           })pb"),
              StartsWith("regions[0].aperture:"));
}

TEST(ConfigTest, OtherErrorsNameTheField) {
  EXPECT_THAT(ErrorOf(R"pb(backend: "vulkan")pb"), StartsWith("backend:"));
  EXPECT_THAT(ErrorOf(R"pb(listeners { unix_socket { path: "rel.sock" } })pb"),
              StartsWith("listeners.unix_socket.path:"));
  EXPECT_THAT(ErrorOf(R"pb(listeners { unix_socket { mode: "0999" } })pb"),
              StartsWith("listeners.unix_socket.mode:"));
  EXPECT_THAT(ErrorOf(R"pb(listeners {
                             unix_socket { group: "no-such-group-xyz" }
                           })pb"),
              StartsWith("listeners.unix_socket.group:"));
  EXPECT_THAT(ErrorOf(R"pb(listeners { tcp { address: "nocolon" } })pb"),
              StartsWith("listeners.tcp.address:"));
  EXPECT_THAT(ErrorOf(R"pb(listeners { tcp { address: "127.0.0.1:7443" } })pb"),
              StartsWith("listeners.tcp.tls_cert: required"));
  EXPECT_THAT(ErrorOf(R"pb(listeners {
                             tcp { address: "127.0.0.1:7443" tls_cert: "c" }
                           })pb"),
              StartsWith("listeners.tcp.tls_key: required"));
  EXPECT_THAT(
      ErrorOf(
          R"pb(listeners {
                 tcp { address: "127.0.0.1:7443" tls_cert: "c" tls_key: "k" }
               })pb"),
      StartsWith("listeners.tcp.tls_client_ca: required"));
  EXPECT_THAT(ErrorOf(R"pb(admin_group: "no-such-group-xyz")pb"),
              StartsWith("admin_group:"));
  EXPECT_THAT(ErrorOf(R"pb(quotas { bytes: 1 })pb"),
              StartsWith("quotas[0].principal: required"));
  EXPECT_THAT(ErrorOf(R"pb(quotas { principal: "uid:1" bytes: 1 }
                           quotas { principal: "uid:1" bytes: 2 })pb"),
              StartsWith("quotas[1].principal:"));
  EXPECT_THAT(ErrorOf(R"pb(quotas { principal: "uid:1" size: "lots" })pb"),
              StartsWith("quotas[0].bytes:"));
  EXPECT_THAT(ErrorOf(R"pb(default_quota: "1 PB")pb"),
              StartsWith("default_quota:"));
  EXPECT_THAT(ErrorOf(R"pb(log_level: "loud")pb"), StartsWith("log_level:"));
  EXPECT_THAT(ErrorOf(R"pb(work_threads: 1000)pb"),
              StartsWith("work_threads:"));
  EXPECT_THAT(ErrorOf(R"pb(fence_history: 4000000)pb"),
              StartsWith("fence_history:"));
  EXPECT_THAT(ErrorOf(R"pb(shutdown_grace_ms: 4000000)pb"),
              StartsWith("shutdown_grace_ms:"));
}

TEST(ConfigTest, FlagsOverrideTheFile) {
  absl::StatusOr<DaemonConfig> parsed = ParseConfigText(
      R"pb(
        backend: "sim"
        log_level: "warn"
        listeners { unix_socket { path: "/tmp/a.sock" } }
      )pb",
      "t");
  ASSERT_TRUE(parsed.ok());
  Overrides o;
  o.socket = "/tmp/b.sock";
  o.log_level = "debug";
  o.enable_fault_injection = true;
  o.tcp_listen = "127.0.0.1:9";
  o.tls_cert = "c";
  o.tls_key = "k";
  o.tls_client_ca = "ca";
  ApplyOverrides(o, &*parsed);
  absl::StatusOr<Config> c = ValidateConfig(*parsed);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->socket_path, "/tmp/b.sock");
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_TRUE(c->enable_fault_injection);
  EXPECT_EQ(c->tcp_address, "127.0.0.1:9");
  EXPECT_EQ(c->tls_client_ca, "ca");

  Overrides backend;
  backend.backend = "cuda";
  ApplyOverrides(backend, &*parsed);
  c = ValidateConfig(*parsed);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->backend, "cuda");
}

TEST(ConfigTest, ParseByteSize) {
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  EXPECT_EQ(*ParseByteSize("4096B"), 4096u);
  EXPECT_EQ(*ParseByteSize("4KiB"), 4096u);
  EXPECT_EQ(*ParseByteSize(" 256 MiB "), 256u << 20);
  EXPECT_EQ(*ParseByteSize("2GiB"), 2ull << 30);
  EXPECT_EQ(*ParseByteSize("1TiB"), 1ull << 40);
  for (const char* bad : {"", "MiB", "-1", "1.5GiB", "1MB", "1 mib",
                          "99999999999999999999", "16777216TiB", "1GiB x"}) {
    absl::StatusOr<uint64_t> v = ParseByteSize(bad);
    EXPECT_FALSE(v.ok()) << bad;
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ConfigTest, MissingFileIsNotFound) {
  absl::StatusOr<DaemonConfig> c = LoadConfigFile("/nonexistent/gpumigd.cfg");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr("/nonexistent/gpumigd.cfg"));
}

}  // namespace
}  // namespace daemon
}  // namespace gpumig

namespace gpumig {
namespace daemon {
namespace {

TEST(ConfigTest, SharedBuffersDefaultBesideTheSocketAndLimitsParse) {
  absl::StatusOr<Config> c = ValidateConfig(*ParseConfigText(
      R"pb(listeners { unix_socket { path: "/run/g/gpumig.sock" } })pb", "t"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->shm_socket_path, "/run/g/gpumig-shm.sock");
  EXPECT_EQ(c->shm_max_buffers_per_principal, 64u);
  EXPECT_EQ(c->shm_max_bytes_per_principal, uint64_t{4} << 30);
  EXPECT_EQ(c->shm_max_total_bytes, uint64_t{16} << 30);

  c = ValidateConfig(*ParseConfigText(R"pb(
                                        listeners {
                                          unix_socket {
                                            path: "/run/g/x"
                                            shared_buffers {
                                              max_buffers_per_principal: 3
                                              max_bytes_per_principal: "1MiB"
                                              max_total_bytes_bytes: 8192
                                            }
                                          }
                                        })pb",
                                      "t"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->shm_socket_path, "/run/g/x-shm.sock");
  EXPECT_EQ(c->shm_max_buffers_per_principal, 3u);
  EXPECT_EQ(c->shm_max_bytes_per_principal, uint64_t{1} << 20);
  EXPECT_EQ(c->shm_max_total_bytes, 8192u);

  c =
      ValidateConfig(*ParseConfigText(
          R"pb(listeners {
                 unix_socket { shared_buffers { socket_name: "none" } }
               })pb",
          "t"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->shm_socket_path, "");

  for (const char* bad : {
           R"pb(listeners {
                  unix_socket { shared_buffers { socket_name: "a/b" } }
                })pb",
           R"pb(listeners {
                  unix_socket {
                    shared_buffers { max_buffers_per_principal: 5000 }
                  }
                })pb",
           R"pb(listeners {
                  unix_socket { shared_buffers { max_total_bytes: "1MB" } }
                })pb",
       }) {
    absl::StatusOr<Config> b = ValidateConfig(*ParseConfigText(bad, "t"));
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(b.status().message()),
                ::testing::HasSubstr("listeners.unix_socket.shared_buffers"));
  }
}

}  // namespace
}  // namespace daemon
}  // namespace gpumig
