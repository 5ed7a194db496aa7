#include "daemon/auth/identity.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/synchronization/notification.h"
#include "daemon/auth/unix_listener.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace daemon {
namespace {

// A short temp dir (unix socket paths are limited to 107 bytes, and
// TEST_TMPDIR can be longer), removed at the end of the test.
class ShortTempDir {
 public:
  ShortTempDir() {
    path_ = "/tmp/gpumig-identity-XXXXXX";
    EXPECT_NE(mkdtemp(path_.data()), nullptr);
  }
  ~ShortTempDir() {
    const std::string cmd = "rm -rf '" + path_ + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
  }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

int ConnectTo(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST(IdentityTest, UnixPrincipalNamesTheUid) {
  Principal p = UnixPrincipal(1000, false);
  EXPECT_EQ(p.name, "uid:1000");
  EXPECT_EQ(p.uid, 1000u);
  EXPECT_FALSE(p.admin);
}

TEST(IdentityTest, RootIsAlwaysAdmin) {
  EXPECT_TRUE(IsUnixAdmin(0, 0, std::nullopt));
  EXPECT_FALSE(IsUnixAdmin(65534, 65534, std::nullopt));
}

TEST(IdentityTest, AdminGroupByPrimaryGid) {
  EXPECT_TRUE(IsUnixAdmin(65534, 4242, gid_t{4242}));
  EXPECT_FALSE(IsUnixAdmin(65534, 65534, gid_t{4242}));
}

TEST(IdentityTest, AdminGroupBySupplementaryGroup) {
  // Root's user entry lists group 0 ("root") as its primary group: a caller
  // with uid 0's user but another effective gid is still in group 0. Use a
  // non-root uid whose user exists: nobody (65534) is in nogroup (65534).
  EXPECT_TRUE(IsUnixAdmin(65534, 1, gid_t{65534}));
  // A uid without a user entry has no supplementary groups.
  EXPECT_FALSE(IsUnixAdmin(54321, 54321, gid_t{65534}));
}

TEST(IdentityTest, CertificatePrincipalUsesTheSubject) {
  absl::StatusOr<Principal> p =
      CertificatePrincipal("CN=rig,O=lab", {"CN=admin"});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->name, "CN=rig,O=lab");
  EXPECT_EQ(p->uid, kNoUid);
  EXPECT_FALSE(p->admin);
  p = CertificatePrincipal("CN=admin", {"CN=admin"});
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->admin);
}

TEST(IdentityTest, CertificateSubjectsCannotImpersonateUnixOrDaemonNames) {
  for (const char* bad : {"", "uid:0", "gpumigd:selftest"}) {
    absl::StatusOr<Principal> p = CertificatePrincipal(bad, {});
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kUnauthenticated);
  }
}

TEST(IdentityTest, ConnectionTableLatestRegistrationWins) {
  ConnectionTable table;
  table.Register(7, UnixPrincipal(1000, false));
  EXPECT_EQ(table.Lookup("fd:7")->name, "uid:1000");
  // The descriptor was closed and reused by a new connection.
  table.Register(7, UnixPrincipal(0, true));
  EXPECT_EQ(table.Lookup("fd:7")->name, "uid:0");
  EXPECT_EQ(table.size(), 1u);
  EXPECT_FALSE(table.Lookup("fd:8").has_value());
}

TEST(IdentityTest, AuthenticatorRefusesUnknownPeers) {
  ConnectionTable table;
  table.Register(5, UnixPrincipal(1000, false));
  Authenticator auth(&table, {});
  absl::StatusOr<Principal> p = auth.Authenticate("fd:5", nullptr);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->name, "uid:1000");
  EXPECT_EQ(auth.Authenticate("fd:6", nullptr).status().code(),
            absl::StatusCode::kUnauthenticated);
  // A TCP peer without an authenticated certificate.
  EXPECT_EQ(auth.Authenticate("ipv4:127.0.0.1:5555", nullptr).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(UnixListenerTest, RecordsThePeerUidOfEachConnection) {
  ShortTempDir dir;
  const std::string path = dir.File("l.sock");
  UnixListenerOptions options;
  options.path = path;
  options.mode = 0600;
  absl::StatusOr<std::unique_ptr<UnixListener>> listener =
      UnixListener::Create(options);
  ASSERT_TRUE(listener.ok()) << listener.status();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  ConnectionTable table;
  absl::Notification handed;
  int got_fd = -1;
  EXPECT_LT(ConnectTo(path), 0) << "not connectable before Start()";
  ASSERT_TRUE((*listener)
                  ->Start(&table,
                          [&](int fd) {
                            got_fd = fd;
                            handed.Notify();
                          })
                  .ok());
  const int client = ConnectTo(path);
  ASSERT_GE(client, 0);
  ASSERT_TRUE(handed.WaitForNotificationWithTimeout(absl::Seconds(10)));
  std::optional<Principal> p = table.Lookup(ConnectionTable::PeerName(got_fd));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->uid, getuid());
  EXPECT_EQ(p->admin, getuid() == 0);
  close(client);
  close(got_fd);

  (*listener)->Stop();
  EXPECT_NE(stat(path.c_str(), &st), 0) << "Stop() removes the socket file";
  EXPECT_LT(ConnectTo(path), 0);
}

TEST(UnixListenerTest, ReplacesAStaleSocketButNotOtherFiles) {
  ShortTempDir dir;
  const std::string path = dir.File("s.sock");
  UnixListenerOptions options;
  options.path = path;
  {
    absl::StatusOr<std::unique_ptr<UnixListener>> first =
        UnixListener::Create(options);
    ASSERT_TRUE(first.ok()) << first.status();
    // Simulate a crash: the file stays behind (no Stop()).
    absl::StatusOr<std::unique_ptr<UnixListener>> second =
        UnixListener::Create(options);
    ASSERT_TRUE(second.ok()) << second.status();
  }
  const std::string file = dir.File("plain");
  FILE* f = fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  options.path = file;
  absl::StatusOr<std::unique_ptr<UnixListener>> refused =
      UnixListener::Create(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace daemon
}  // namespace gpumig
