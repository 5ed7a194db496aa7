// gpumigctl's FaultService: fault inject, fault clear, fault list.
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

int RunFaultInject(Ctx& ctx) {
  gc::FaultSpec spec;
  absl::StatusOr<gc::FaultKind> kind = gc::ParseFaultKind(ctx.pos()[0]);
  if (!kind.ok()) return ctx.Error(kind.status());
  spec.kind = *kind;
  const int triggers = (ctx.args.Given("next") ? 1 : 0) +
                       (ctx.args.Given("probability") ? 1 : 0) +
                       (ctx.args.Has("always") ? 1 : 0);
  if (triggers != 1) {
    return ctx.Usage(
        "give exactly one trigger: --next N, --probability P or --always");
  }
  if (ctx.args.Given("seed") && !ctx.args.Given("probability")) {
    return ctx.Usage("--seed goes with --probability");
  }
  if (std::optional<std::string> n = ctx.args.Get("next")) {
    absl::StatusOr<uint64_t> v = ParseUint(*n, UINT32_MAX);
    if (!v.ok()) {
      return ctx.Error(absl::InvalidArgumentError(
          absl::StrCat("--next: ", v.status().message())));
    }
    spec.next_n = static_cast<uint32_t>(*v);
  } else if (std::optional<std::string> p = ctx.args.Get("probability")) {
    absl::StatusOr<double> v = ParseProbability(*p);
    if (!v.ok()) return ctx.Error(v.status());
    spec.probability = *v;
    if (std::optional<std::string> seed = ctx.args.Get("seed")) {
      absl::StatusOr<uint64_t> s = ParseUint(*seed);
      if (!s.ok()) {
        return ctx.Error(absl::InvalidArgumentError(
            absl::StrCat("--seed: ", s.status().message())));
      }
      spec.seed = *s;
    }
  } else {
    spec.always = true;
  }
  spec.region = ctx.args.GetOr("region", "");
  if (std::optional<std::string> op = ctx.args.Get("op")) {
    absl::StatusOr<gc::FenceKind> k = gc::ParseFenceKind(*op);
    if (!k.ok()) return ctx.Error(k.status());
    spec.op = *k;
  }
  if (std::optional<std::string> l = ctx.args.Get("latency-us")) {
    absl::StatusOr<uint64_t> v = ParseUint(*l, UINT32_MAX);
    if (!v.ok()) {
      return ctx.Error(absl::InvalidArgumentError(
          absl::StrCat("--latency-us: ", v.status().message())));
    }
    spec.latency_us = static_cast<uint32_t>(*v);
  }
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::FaultInfo> f = client->InjectFault(spec, ctx.call);
  if (!f.ok()) return ctx.Error(f.status());
  return PrintResult(
      ctx, [&](JsonWriter& w) { JsonFault(w, *f); },
      [&] {
        return absl::StrCat(
            "fault ", f->id, " armed: ", gc::FaultKindName(f->spec.kind), " ",
            TriggerText(f->spec), " region ",
            f->spec.region.empty() ? "*" : f->spec.region, " op ",
            f->spec.op == gc::FenceKind::kUnspecified
                ? "*"
                : gc::FenceKindName(f->spec.op),
            "\n");
      });
}

int RunFaultClear(Ctx& ctx) {
  const bool all = ctx.args.Has("all");
  if (all == !ctx.pos().empty()) {
    return ctx.Usage("give a fault ID or --all");
  }
  uint64_t id = 0;
  if (!all) {
    absl::StatusOr<uint64_t> v = ParseUint(ctx.pos()[0]);
    if (!v.ok() || *v == 0) {
      return ctx.Error(absl::InvalidArgumentError(
          absl::StrCat("bad fault id '", ctx.pos()[0], "'")));
    }
    id = *v;
  }
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<uint32_t> cleared = client->ClearFaults(id, ctx.call);
  if (!cleared.ok()) return ctx.Error(cleared.status());
  return PrintResult(
      ctx,
      [&](JsonWriter& w) {
        w.BeginObject();
        w.FieldUint("cleared", *cleared);
        w.EndObject();
      },
      [&] { return absl::StrCat("cleared ", *cleared, " fault(s)\n"); });
}

int RunFaultList(Ctx& ctx) {
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<std::vector<gc::FaultInfo>> faults =
      client->ListFaults(ctx.call);
  if (!faults.ok()) return ctx.Error(faults.status());
  if (ctx.json) {
    JsonWriter w;
    w.BeginObject();
    w.Key("faults");
    w.BeginArray();
    for (const gc::FaultInfo& f : *faults) JsonFault(w, f);
    w.EndArray();
    w.EndObject();
    ctx.PrintJson(w);
  } else if (faults->empty()) {
    ctx.Print("no faults armed\n");
  } else {
    ctx.Print(FaultTable(*faults));
  }
  return kExitOk;
}

}  // namespace

std::vector<Command> FaultCommands() {
  return {
      {"fault inject",
       "KIND (--next N | --probability P [--seed S] | --always) [--region R] "
       "[--op OP] [--latency-us N]",
       "arm a fault (admin; daemon started with fault injection)",
       "KIND: fail_blit, fail_clear, fail_work_allocation, ban_memcpy, "
       "wedge_engine, engine_latency.\nOP: clear, copy (= migrate), evict "
       "(not for wedge_engine and engine_latency).\nFaults affect every "
       "principal's operations in scope.",
       {{"next", "N", "fire on the next N matching events"},
        {"probability", "P", "fire with probability P in [0, 1]"},
        {"seed", "S", "generator seed for --probability (0: daemon picks)"},
        {"always", "", "fire on every matching event"},
        {"region", "R", "only operations whose destination is region R"},
        {"op", "OP", "only operations of this kind"},
        {"latency-us", "N", "engine_latency: added delay per command"}},
       1,
       1,
       RunFaultInject},
      {"fault clear",
       "(ID | --all)",
       "disarm a fault, or all (admin)",
       "",
       {{"all", "", "every fault"}},
       0,
       1,
       RunFaultClear},
      {"fault list",
       "",
       "list armed faults and their counts (admin)",
       "",
       {},
       0,
       0,
       RunFaultList},
  };
}

}  // namespace gpumig::cli
