#include "client/ctl_batch.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/cli_args.h"
#include "client/cli_format.h"
#include "client/ctl_render.h"
#include "client/gpumig_client.h"

namespace gpumig::cli {
namespace {

namespace gc = ::gpumig::client;

// Prints a batch's result (see ctl_batch.h) and returns the exit code.
// `ok_line` is the human line of a submitted entry.
int PrintBatch(
    const Ctx& ctx, const gc::BatchResult& r,
    const std::function<std::string(const gc::BatchEntryResult&)>& ok_line) {
  if (ctx.json) {
    JsonWriter w;
    w.BeginObject();
    w.Key("entries");
    w.BeginArray();
    for (const gc::BatchEntryResult& e : r.entries) {
      w.BeginObject();
      w.Field("handle", e.handle);
      w.FieldInt("error_code", static_cast<int>(e.status.code()));
      w.Field("error", absl::StatusCodeToString(e.status.code()));
      w.Field("error_message", e.status.message());
      w.FieldUint("fence_id", e.fence_id);
      if (e.object.has_value()) {
        w.Key("object");
        JsonObject(w, *e.object);
      }
      w.EndObject();
    }
    w.EndArray();
    w.FieldUint("succeeded", r.succeeded);
    w.FieldUint("failed", r.failed);
    w.FieldUint("fence_id", r.fence_id);
    JsonFenceField(w, r.fence);
    w.EndObject();
    ctx.PrintJson(w);
  } else {
    std::string text;
    for (const gc::BatchEntryResult& e : r.entries) {
      if (e.status.ok()) {
        absl::StrAppend(&text, ok_line(e), "\n");
      } else {
        absl::StrAppend(&text, e.handle.empty() ? "-" : e.handle, ": ",
                        StatusText(e.status), "\n");
      }
    }
    absl::StrAppend(&text, "batch: ", r.entries.size(), " entries, ",
                    r.succeeded, " ok, ", r.failed, " failed; fence array ",
                    r.fence_id);
    if (r.fence.has_value()) {
      absl::StrAppend(&text, " ", gc::FenceStateName(r.fence->state), " ",
                      gc::FenceOutcomeName(r.fence->outcome));
      if (r.fence->array.has_value()) {
        const gc::FenceArrayInfo& a = *r.fence->array;
        absl::StrAppend(&text, " (", a.members, " members: ", a.blit_ok,
                        " blit ok, ", a.fallback, " fallback, ",
                        a.unknown_state, " unknown state, ", a.failed,
                        " failed)");
      }
      if (!r.fence->error.ok()) {
        absl::StrAppend(&text, ", error ", StatusText(r.fence->error));
      }
      absl::StrAppend(&text, "\n");
    } else {
      absl::StrAppend(&text, " submitted; its outcome: `gpumigctl fence wait ",
                      r.fence_id, "`\n");
    }
    ctx.Print(text);
  }
  for (const gc::BatchEntryResult& e : r.entries) {
    if (!e.status.ok()) return ExitCodeForStatus(e.status);
  }
  return r.fence.has_value() ? FenceExit(ctx, *r.fence) : kExitOk;
}

}  // namespace

int RunCreateBatch(Ctx& ctx, const gc::CreateObjectOptions& options,
                   uint64_t count) {
  if (count == 0 || count > gc::kMaxBatchEntries) {
    return ctx.Usage(absl::StrCat("--count: 1 to ", gc::kMaxBatchEntries));
  }
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::BatchResult> r =
      client->CreateBatch(std::vector<gc::CreateObjectOptions>(count, options),
                          ctx.args.Has("wait"), ctx.call);
  if (!r.ok()) return ctx.Error(r.status());
  if (ctx.args.Has("quiet") && !ctx.json) {
    std::string text;
    for (const gc::BatchEntryResult& e : r->entries) {
      if (e.status.ok()) absl::StrAppend(&text, e.handle, "\n");
    }
    ctx.Print(text);
    for (const gc::BatchEntryResult& e : r->entries) {
      if (!e.status.ok()) return ctx.Error(e.status);
    }
    return kExitOk;
  }
  return PrintBatch(ctx, *r, [](const gc::BatchEntryResult& e) {
    return e.object.has_value()
               ? absl::StrCat("created ", e.handle, ": ",
                              FormatSize(e.object->size_bytes), " in ",
                              e.object->region, ", clear fence ", e.fence_id)
               : absl::StrCat("created ", e.handle, ", clear fence ",
                              e.fence_id);
  });
}

int RunMigrateBatch(Ctx& ctx) {
  const std::vector<std::string>& pos = ctx.pos();
  const std::string& region = pos.back();
  std::vector<gc::MigrateBatchEntry> entries;
  entries.reserve(pos.size() - 1);
  for (size_t i = 0; i + 1 < pos.size(); ++i) entries.push_back({pos[i], ""});
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::BatchResult> r =
      client->MigrateBatch(entries, region, ctx.args.Has("wait"), ctx.call);
  if (!r.ok()) return ctx.Error(r.status());
  return PrintBatch(ctx, *r, [&](const gc::BatchEntryResult& e) {
    return absl::StrCat(e.handle, " -> ", region, ": fence ", e.fence_id);
  });
}

int RunDestroyBatch(Ctx& ctx) {
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::BatchResult> r =
      client->DestroyBatch(ctx.pos(), ctx.args.Has("wait"), ctx.call);
  if (!r.ok()) return ctx.Error(r.status());
  return PrintBatch(ctx, *r, [](const gc::BatchEntryResult& e) {
    return absl::StrCat("destroyed ", e.handle);
  });
}

}  // namespace gpumig::cli
