// gpumigctl driven in-process through RunGpumigctl: help, usage errors and
// the errors found before any RPC, with their exit codes and messages. No
// daemon: where a command would connect, the socket is one nobody listens
// on, and the answer is UNAVAILABLE (exit 9) with the hint.
#include "client/gpumigctl_main.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "client/cli_args.h"
#include "gtest/gtest.h"

namespace gpumig::cli {
namespace {

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

Result Ctl(std::vector<std::string> args) {
  std::ostringstream out, err;
  Result r;
  r.code = RunGpumigctl(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

// A socket path no daemon listens on.
const char kNoDaemon[] = "/nonexistent-gpumig-test/gpumig.sock";

TEST(GpumigctlMainTest, NoCommandIsAUsageErrorWithTheCommandList) {
  Result r = Ctl({});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(absl::StartsWith(
      r.err, "gpumigctl: no command given\n\nusage: gpumigctl [global flags]"))
      << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "\n  fence watch ")) << r.err;
}

TEST(GpumigctlMainTest, HelpListsEveryCommandInOrderOnStdout) {
  Result r = Ctl({"help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.err, "");
  // The object commands first, the daemon's last, as documented.
  const size_t create = r.out.find("\n  create SIZE [flags]\n");
  const size_t watch = r.out.find("\n  fence watch ");
  const size_t selftest = r.out.find("\n  selftest ");
  ASSERT_NE(create, std::string::npos) << r.out;
  ASSERT_NE(watch, std::string::npos) << r.out;
  ASSERT_NE(selftest, std::string::npos) << r.out;
  EXPECT_LT(create, watch);
  EXPECT_LT(watch, selftest);
  EXPECT_EQ(Ctl({"--help"}).out, r.out);
  EXPECT_EQ(Ctl({"-h"}).out, r.out);
}

TEST(GpumigctlMainTest, CommandHelpShowsItsUsageAndFlags) {
  Result r = Ctl({"help", "fence", "wait"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_TRUE(
      absl::StartsWith(r.out, "usage: gpumigctl fence wait ID [--timeout DUR]"))
      << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "--timeout DUR")) << r.out;
  EXPECT_EQ(Ctl({"fence", "wait", "--help"}).out, r.out);
}

TEST(GpumigctlMainTest, GroupWithoutSubcommandIsAUsageError) {
  Result r = Ctl({"exec"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_TRUE(absl::StartsWith(r.err,
                               "gpumigctl: exec: missing subcommand\n\n"
                               "usage: gpumigctl exec SUBCOMMAND ...\n"))
      << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "gpumigctl exec checksum")) << r.err;

  Result asked = Ctl({"exec", "--help"});
  EXPECT_EQ(asked.code, kExitOk);
  EXPECT_TRUE(absl::StartsWith(asked.out, "usage: gpumigctl exec SUBCOMMAND"));
}

TEST(GpumigctlMainTest, UnknownCommandsAreUsageErrors) {
  Result r = Ctl({"frobnicate"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_TRUE(
      absl::StartsWith(r.err, "gpumigctl: unknown command 'frobnicate'\n\n"))
      << r.err;

  Result sub = Ctl({"fence", "poke"});
  EXPECT_EQ(sub.code, kExitUsage);
  EXPECT_TRUE(absl::StartsWith(
      sub.err,
      "gpumigctl: unknown command 'fence poke'\n\nusage: gpumigctl "
      "fence SUBCOMMAND"))
      << sub.err;

  EXPECT_EQ(Ctl({"help", "nosuch"}).code, kExitUsage);
}

TEST(GpumigctlMainTest, WrongArgumentCountsAreUsageErrors) {
  Result missing = Ctl({"create"});
  EXPECT_EQ(missing.code, kExitUsage);
  EXPECT_TRUE(absl::StartsWith(missing.err,
                               "gpumigctl: create: missing argument (expected "
                               "SIZE [flags])\n\nusage: gpumigctl create"))
      << missing.err;

  Result extra = Ctl({"migrate", "obj-1", "smem", "lmem"});
  EXPECT_EQ(extra.code, kExitUsage);
  EXPECT_TRUE(absl::StartsWith(
      extra.err, "gpumigctl: migrate: unexpected argument 'lmem'\n"))
      << extra.err;
}

TEST(GpumigctlMainTest, UnknownFlagsAreUsageErrors) {
  Result before = Ctl({"--bogus", "ping"});
  EXPECT_EQ(before.code, kExitUsage);
  EXPECT_TRUE(absl::StartsWith(before.err, "gpumigctl: ")) << before.err;
  EXPECT_TRUE(absl::StrContains(before.err, "--bogus")) << before.err;

  Result after = Ctl({"create", "4K", "--bogus"});
  EXPECT_EQ(after.code, kExitUsage);
  EXPECT_TRUE(absl::StartsWith(after.err, "gpumigctl: create: ")) << after.err;
  EXPECT_TRUE(absl::StrContains(after.err, "usage: gpumigctl create"));
}

TEST(GpumigctlMainTest, FaultInjectNeedsExactlyOneTrigger) {
  Result none = Ctl({"fault", "inject", "fail_blit"});
  EXPECT_EQ(none.code, kExitUsage);
  EXPECT_TRUE(absl::StartsWith(
      none.err,
      "gpumigctl: fault inject: give exactly one trigger: --next N, "
      "--probability P or --always\n"))
      << none.err;
  EXPECT_EQ(
      Ctl({"fault", "inject", "fail_blit", "--next", "1", "--always"}).code,
      kExitUsage);
  EXPECT_EQ(
      Ctl({"fault", "inject", "fail_blit", "--next", "1", "--seed", "3"}).code,
      kExitUsage);
}

TEST(GpumigctlMainTest, BadValuesFailBeforeConnecting) {
  // Each of these would connect next; the value error comes first, so no
  // UNAVAILABLE even though no daemon listens.
  Result size = Ctl({"--socket", kNoDaemon, "read", "obj-1", "--offset", "x"});
  EXPECT_EQ(size.code, kExitInvalidArgument);
  EXPECT_TRUE(
      absl::StartsWith(size.err, "gpumigctl: read: INVALID_ARGUMENT: --offset"))
      << size.err;

  Result fence = Ctl({"--socket", kNoDaemon, "fence", "get", "abc"});
  EXPECT_EQ(fence.code, kExitInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(
      fence.err, "gpumigctl: fence get: INVALID_ARGUMENT: bad fence id: "))
      << fence.err;

  Result kind = Ctl(
      {"--socket", kNoDaemon, "fault", "inject", "fail_nothing", "--always"});
  EXPECT_EQ(kind.code, kExitInvalidArgument);
  EXPECT_TRUE(absl::StrContains(kind.err, "unknown fault kind 'fail_nothing'"))
      << kind.err;

  Result timeout = Ctl({"--timeout", "soon", "ping"});
  EXPECT_EQ(timeout.code, kExitInvalidArgument);
  EXPECT_TRUE(
      absl::StartsWith(timeout.err, "gpumigctl: ping: INVALID_ARGUMENT"))
      << timeout.err;
}

TEST(GpumigctlMainTest, NoDaemonIsUnavailableWithAHint) {
  Result r = Ctl({"--socket", kNoDaemon, "--timeout", "2s", "ping"});
  EXPECT_EQ(r.code, kExitUnavailable);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(absl::StartsWith(r.err, "gpumigctl: ping: UNAVAILABLE: "))
      << r.err;
  EXPECT_TRUE(absl::StrContains(
      r.err, std::string("\ngpumigctl: is gpumigd running? socket ") +
                 kNoDaemon + "\n"))
      << r.err;
}

}  // namespace
}  // namespace gpumig::cli
