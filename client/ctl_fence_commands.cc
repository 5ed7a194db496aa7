// gpumigctl's FenceService: fence get, fence wait, fence watch.
#include <pthread.h>
#include <signal.h>

#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/cli_args.h"
#include "client/cli_format.h"
#include "client/ctl_commands.h"
#include "client/ctl_context.h"
#include "client/ctl_render.h"
#include "client/gpumig_client.h"

namespace gpumig::cli {
namespace {

namespace gc = ::gpumig::client;

int RunFenceGet(Ctx& ctx) {
  absl::StatusOr<uint64_t> id = FenceIdArg(ctx.pos()[0]);
  if (!id.ok()) return ctx.Error(id.status());
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::FenceStatus> f = client->GetFence(*id, ctx.call);
  if (!f.ok()) return ctx.Error(f.status());
  return PrintResult(
      ctx, [&](JsonWriter& w) { JsonFence(w, *f); },
      [&] { return HumanFence(*f); });
}

int RunFenceWait(Ctx& ctx) {
  absl::StatusOr<uint64_t> id = FenceIdArg(ctx.pos()[0]);
  if (!id.ok()) return ctx.Error(id.status());
  absl::Duration timeout = absl::Seconds(10);
  if (std::optional<std::string> t = ctx.args.Get("timeout")) {
    absl::StatusOr<absl::Duration> d = ParseDurationFlag(*t);
    if (!d.ok()) return ctx.Error(d.status());
    timeout = *d;
  }
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  // The RPC deadline follows the wait's own timeout unless --timeout was
  // given before the command (ctx.call then carries it).
  absl::StatusOr<gc::FenceStatus> f = client->WaitFence(*id, timeout, ctx.call);
  if (!f.ok()) return ctx.Error(f.status());
  if (ctx.json) {
    JsonWriter w;
    JsonFence(w, *f);
    ctx.PrintJson(w);
  } else {
    ctx.Print(HumanFence(*f));
  }
  return FenceExit(ctx, *f);
}

// Runs `fn` with SIGINT and SIGTERM turned into a Cancel() of `canceller`.
// The signals are blocked before the client's threads exist (the caller
// creates the client afterwards), and a helper thread sigwait()s for them.
class SignalCanceller {
 public:
  explicit SignalCanceller(gc::WatchCanceller canceller)
      : canceller_(std::move(canceller)) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    thread_ = std::thread([this] {
      int sig = 0;
      while (sigwait(&set_, &sig) == 0) {
        absl::MutexLock lock(&mu_);
        if (done_) return;
        interrupted_ = true;
        canceller_.Cancel();
      }
    });
  }
  ~SignalCanceller() {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  bool interrupted() {
    absl::MutexLock lock(&mu_);
    return interrupted_;
  }

 private:
  gc::WatchCanceller canceller_;
  sigset_t set_;
  sigset_t old_;
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool interrupted_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

int RunFenceWatch(Ctx& ctx) {
  gc::WatchOptions options;
  options.handle = ctx.args.GetOr("handle", "");
  options.all_principals = ctx.args.Has("all");
  if (std::optional<std::string> kinds = ctx.args.Get("kinds")) {
    for (const std::string& name : SplitList(*kinds)) {
      absl::StatusOr<gc::EventKind> kind = gc::ParseEventKind(name);
      if (!kind.ok()) return ctx.Error(kind.status());
      options.kinds.push_back(*kind);
    }
  }
  uint64_t count = 0;  // 0: unlimited
  if (std::optional<std::string> c = ctx.args.Get("count")) {
    absl::StatusOr<uint64_t> n = ParseUint(*c);
    if (!n.ok()) {
      return ctx.Error(absl::InvalidArgumentError(
          absl::StrCat("--count: ", n.status().message())));
    }
    count = *n;
  }
  gc::CallOptions call;
  call.timeout = absl::InfiniteDuration();
  if (std::optional<std::string> t = ctx.args.Get("timeout")) {
    absl::StatusOr<absl::Duration> d = ParseDurationFlag(*t);
    if (!d.ok()) return ctx.Error(d.status());
    call.timeout = *d == absl::ZeroDuration() ? absl::InfiniteDuration() : *d;
  } else if (ctx.global.Given("timeout")) {
    call = ctx.call;
  }
  const bool bounded = call.timeout != absl::InfiniteDuration();

  gc::WatchCanceller canceller;
  SignalCanceller signals(canceller);  // before the client's threads start
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  uint64_t seen = 0;
  absl::Status s = client->Watch(
      options,
      [&](const gc::WatchEvent& e) {
        if (ctx.json) {
          JsonWriter w;
          JsonEvent(w, e);
          ctx.PrintJson(w);
        } else {
          ctx.Print(HumanEvent(e));
        }
        ++seen;
        // Stop once nobody reads our output (`... | head -n 3`).
        return ctx.OutputOk() && (count == 0 || seen < count);
      },
      &canceller, call);
  // The watch's own deadline ending it is a normal end.
  if (s.code() == absl::StatusCode::kDeadlineExceeded && bounded) {
    s = absl::OkStatus();
  }
  if (!s.ok()) return ctx.Error(s);
  return kExitOk;
}

}  // namespace

std::vector<Command> FenceCommands() {
  return {
      {"fence get",
       "ID",
       "show a fence's status (never blocks)",
       "",
       {},
       1,
       1,
       RunFenceGet},
      {"fence wait",
       "ID [--timeout DUR]",
       "wait for a fence to signal",
       "Prints the fence: outcome (BLIT_OK, FALLBACK_COPY, FALLBACK_CLEAR, "
       "FALLBACK_DEVICE_COPY, FALLBACK_DEVICE_CLEAR, "
       "UNKNOWN_STATE, FAILED) and error.\nExit 8 if it did not signal in "
       "time, 7 if UNKNOWN_STATE, 12 if FAILED.",
       {{"timeout", "DUR", "how long to wait (default 10s)"}},
       1,
       1,
       RunFenceWait},
      {"fence watch",
       "[--handle H] [--all] [--kinds LIST] [--count N] "
       "[--timeout DUR]",
       "print fence events as they happen",
       "Runs until interrupted (Ctrl-C), --count events, or --timeout.",
       {{"handle", "H", "only this object's events"},
        {"all", "", "every principal's objects (admins only)"},
        {"kinds", "LIST",
         "only these kinds: blit_ok,fallback_taken,unknown_state,failed,"
         "evicted"},
        {"count", "N", "stop after N events"},
        {"timeout", "DUR", "stop after this long"}},
       0,
       0,
       RunFenceWatch},
  };
}

}  // namespace gpumig::cli
