// gpumigctl's RegionService: regions, evict.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli_args.h"
#include "client/cli_format.h"
#include "client/ctl_commands.h"
#include "client/ctl_context.h"
#include "client/ctl_render.h"
#include "client/gpumig_client.h"

namespace gpumig::cli {
namespace {

namespace gc = ::gpumig::client;

int RunRegions(Ctx& ctx) {
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  if (!ctx.pos().empty()) {
    absl::StatusOr<gc::RegionInfo> r =
        client->GetRegion(ctx.pos()[0], ctx.call);
    if (!r.ok()) return ctx.Error(r.status());
    if (ctx.json) {
      JsonWriter w;
      JsonRegion(w, *r);
      ctx.PrintJson(w);
    } else {
      ctx.Print(HumanRegion(*r));
    }
    return kExitOk;
  }
  absl::StatusOr<std::vector<gc::RegionInfo>> regions =
      client->ListRegions(ctx.call);
  if (!regions.ok()) return ctx.Error(regions.status());
  return PrintResult(
      ctx,
      [&](JsonWriter& w) {
        w.BeginObject();
        w.Key("regions");
        w.BeginArray();
        for (const gc::RegionInfo& r : *regions) JsonRegion(w, r);
        w.EndArray();
        w.EndObject();
      },
      [&] { return RegionTable(*regions); });
}

int RunEvict(Ctx& ctx) {
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  const std::string& region = ctx.pos()[0];
  absl::StatusOr<gc::EvictResult> r =
      client->EvictRegion(region, ctx.args.Has("wait"), ctx.call);
  if (!r.ok()) return ctx.Error(r.status());
  if (ctx.json) {
    JsonWriter w;
    w.BeginObject();
    w.Field("region", region);
    w.FieldUint("objects_evicted", r->objects_evicted);
    w.FieldUint("bytes_evicted", r->bytes_evicted);
    w.FieldUint("objects_skipped", r->objects_skipped);
    w.FieldUint("last_fence_id", r->last_fence_id);
    w.EndObject();
    ctx.PrintJson(w);
  } else {
    ctx.Print(absl::StrCat(region, ": evicted ", r->objects_evicted,
                           " object(s), ", FormatSize(r->bytes_evicted),
                           "; skipped ", r->objects_skipped, "; last fence ",
                           r->last_fence_id, "\n"));
  }
  return kExitOk;
}

}  // namespace

std::vector<Command> RegionCommands() {
  return {
      {"regions",
       "[NAME]",
       "show memory regions",
       "Without NAME: a table of every region. With NAME: all of its fields.",
       {},
       0,
       1,
       RunRegions},
      {"evict",
       "REGION [--wait]",
       "evict every evictable object from a region (admin)",
       "",
       {kWaitFlag},
       1,
       1,
       RunEvict},
  };
}

}  // namespace gpumig::cli
