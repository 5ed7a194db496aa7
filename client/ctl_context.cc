// gpumigctl's command model and shared helpers: see ctl_context.h.
#include "client/ctl_context.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/ctl_render.h"

namespace gpumig::cli {

namespace gc = ::gpumig::client;

std::string CommandUsage(const Command& c) {
  std::string out = absl::StrCat("usage: gpumigctl ", c.name);
  if (!c.synopsis.empty()) absl::StrAppend(&out, " ", c.synopsis);
  absl::StrAppend(&out, "\n\n", c.summary, "\n");
  if (!c.details.empty()) absl::StrAppend(&out, c.details, "\n");
  std::vector<FlagSpec> flags = c.flags;
  flags.push_back({"help", "", "show this help", 'h'});
  absl::StrAppend(&out, "\nFlags:\n", FormatFlagHelp(flags));
  absl::StrAppend(&out,
                  "\nGlobal flags (--socket, --target, --json, --timeout, ...) "
                  "also apply; see `gpumigctl help`.\n");
  return out;
}

bool Ctx::Print(absl::string_view text) const {
  *out << text;
  out->flush();
  return static_cast<bool>(*out);
}

void Ctx::PrintJson(const JsonWriter& w) const {
  Print(absl::StrCat(w.str(), "\n"));
}

int Ctx::Error(const absl::Status& status) const {
  *err << "gpumigctl: " << command->name << ": "
       << absl::StatusCodeToString(status.code()) << ": " << status.message()
       << "\n";
  if (status.code() == absl::StatusCode::kUnavailable) {
    if (!connect.tcp_target.empty()) {
      *err << "gpumigctl: is gpumigd running? target " << connect.tcp_target
           << "\n";
    } else {
      *err << "gpumigctl: is gpumigd running? socket "
           << (connect.unix_socket.empty() ? gc::DefaultSocketPath()
                                           : connect.unix_socket)
           << "\n";
    }
  }
  return ExitCodeForStatus(status);
}

int Ctx::Usage(absl::string_view message) const {
  *err << "gpumigctl: " << command->name << ": " << message << "\n\n"
       << CommandUsage(*command);
  return kExitUsage;
}

absl::StatusOr<gc::Client*> Ctx::Client() {
  if (client_storage == nullptr) {
    absl::StatusOr<std::unique_ptr<gc::Client>> c =
        gc::Client::Connect(connect);
    if (!c.ok()) return c.status();
    client_storage = *std::move(c);
  }
  return client_storage.get();
}

int PrintResult(const Ctx& ctx, absl::FunctionRef<void(JsonWriter&)> json,
                absl::FunctionRef<std::string()> human) {
  if (ctx.json) {
    JsonWriter w;
    json(w);
    ctx.PrintJson(w);
  } else {
    ctx.Print(human());
  }
  return kExitOk;
}

// Parses the value flag `name` with ParseSize (absent: `fallback`).
absl::StatusOr<uint64_t> SizeFlag(const Ctx& ctx, absl::string_view name,
                                  uint64_t fallback) {
  std::optional<std::string> v = ctx.args.Get(name);
  if (!v.has_value()) return fallback;
  absl::StatusOr<uint64_t> size = ParseSize(*v);
  if (!size.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": ", size.status().message()));
  }
  return size;
}

absl::StatusOr<uint64_t> FenceIdArg(absl::string_view text) {
  absl::StatusOr<uint64_t> id = ParseUint(text);
  if (!id.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad fence id: ", id.status().message()));
  }
  return id;
}

// Exit code for a fence a command waited for: 0 for BLIT_OK and fallbacks,
// 7 for UNKNOWN_STATE, 12 for FAILED; prints a line to stderr for the last
// two.
int FenceExit(const Ctx& ctx, const gc::FenceStatus& f) {
  if (f.outcome == gc::FenceOutcome::kUnknownState) {
    *ctx.err << "gpumigctl: " << ctx.command->name << ": fence " << f.fence_id
             << " ended UNKNOWN_STATE (object " << f.handle
             << " is in unknown state: destroy it): " << StatusText(f.error)
             << "\n";
    return kExitDataLoss;
  }
  if (f.outcome == gc::FenceOutcome::kFailed) {
    *ctx.err << "gpumigctl: " << ctx.command->name << ": fence " << f.fence_id
             << " ended FAILED (nothing changed): " << StatusText(f.error)
             << "\n";
    return kExitOperationFailed;
  }
  return kExitOk;
}

// Prints a submission (fence id, and the fence if the call waited).
int PrintSubmit(const Ctx& ctx, const gc::SubmitResult& r,
                const std::function<void(JsonWriter&)>& extra_json,
                absl::string_view human_prefix) {
  if (ctx.json) {
    JsonWriter w;
    w.BeginObject();
    extra_json(w);
    w.FieldUint("fence_id", r.fence_id);
    JsonFenceField(w, r.fence);
    w.EndObject();
    ctx.PrintJson(w);
  } else if (r.fence.has_value()) {
    ctx.Print(HumanFence(*r.fence));
  } else {
    // Not waited for: it may well have signalled already (small commands
    // often have), so say where its outcome is rather than guess.
    ctx.Print(absl::StrCat(human_prefix, "fence ", r.fence_id,
                           " submitted; its outcome: `gpumigctl fence wait ",
                           r.fence_id, "`\n"));
  }
  return r.fence.has_value() ? FenceExit(ctx, *r.fence) : kExitOk;
}

const FlagSpec kWaitFlag = {"wait", "",
                            "return once the fence has signalled "
                            "and print it"};

}  // namespace gpumig::cli
