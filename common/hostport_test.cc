#include "common/hostport.h"

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

TEST(SplitHostPortTest, NamesIpv4AndBracketedIpv6) {
  absl::StatusOr<HostPort> a = SplitHostPort("127.0.0.1:9464");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_FALSE(a->bracketed);
  EXPECT_EQ(a->port, 9464);
  EXPECT_EQ(a->ToString(), "127.0.0.1:9464");

  absl::StatusOr<HostPort> b = SplitHostPort("[::1]:0");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->host, "::1");
  EXPECT_TRUE(b->bracketed);
  EXPECT_EQ(b->port, 0);
  EXPECT_EQ(b->ToString(), "[::1]:0");

  absl::StatusOr<HostPort> c = SplitHostPort("gpu-7.example:65535");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->host, "gpu-7.example");
  EXPECT_EQ(c->port, 65535);
}

TEST(SplitHostPortTest, RefusesBadPortsWithTheReason) {
  for (const char* bad :
       {"127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:99999", "127.0.0.1:-1",
        "127.0.0.1:+80", "127.0.0.1: 80", "127.0.0.1:80 ", "127.0.0.1:94x",
        "127.0.0.1:000080", "[::1]:"}) {
    absl::StatusOr<HostPort> hp = SplitHostPort(bad);
    EXPECT_EQ(hp.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(hp.status().message(), "bad port") << bad;
  }
  EXPECT_EQ(SplitHostPort("9464").status().message(), "no port");
  EXPECT_EQ(SplitHostPort("").status().message(), "no port");
}

TEST(SplitHostPortTest, RefusesMissingOrMalformedHosts) {
  EXPECT_EQ(SplitHostPort(":9464").status().message(), "no host");
  EXPECT_EQ(SplitHostPort("[::1:9464").status().message(), "unclosed [");
  EXPECT_EQ(SplitHostPort("::1:9464").status().message(),
            "an IPv6 address needs brackets");
  EXPECT_EQ(SplitHostPort("[127.0.0.1]:9464").status().message(),
            "brackets around a host that is not IPv6");
  EXPECT_EQ(SplitHostPort("[]:9464").status().message(),
            "brackets around a host that is not IPv6");
  EXPECT_EQ(SplitHostPort("a]b:9464").status().message(), "a stray bracket");
  EXPECT_EQ(SplitHostPort("[[::1]]:9464").status().message(),
            "a stray bracket");
}

}  // namespace
}  // namespace gpumig
