#include "tests/torture/schedule.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace gpumig::torture {
namespace {

using client::FaultKind;
using client::FaultSpec;
using client::FenceKind;

std::string Seconds3(absl::Duration d) {
  return absl::StrFormat("%.3fs", absl::ToDoubleSeconds(d));
}

}  // namespace

std::string SpecToString(const FaultSpec& spec) {
  std::string out = client::FaultKindName(spec.kind);
  if (spec.next_n > 0) {
    absl::StrAppend(&out, " next_n=", spec.next_n);
  } else if (spec.probability.has_value()) {
    absl::StrAppendFormat(&out, " p=%.3f seed=%u", *spec.probability,
                          spec.seed);
  } else if (spec.always) {
    absl::StrAppend(&out, " always");
  }
  if (!spec.region.empty()) absl::StrAppend(&out, " region=", spec.region);
  if (spec.op != FenceKind::kUnspecified) {
    absl::StrAppend(&out, " op=", client::FenceKindName(spec.op));
  }
  if (spec.latency_us > 0)
    absl::StrAppend(&out, " latency_us=", spec.latency_us);
  return out;
}

std::string ScheduledAction::ToString() const {
  std::string out = absl::StrFormat("#%u at %s ", index, Seconds3(at));
  if (kind == Kind::kEvict) {
    absl::StrAppend(&out, "evict region=", region);
  } else {
    absl::StrAppend(&out, "inject ", SpecToString(spec),
                    " hold=", absl::FormatDuration(hold));
  }
  return out;
}

FaultSchedule::FaultSchedule(ScheduleOptions options)
    : options_(std::move(options)), rng_(DeriveSeed(options_.seed, 0)) {}

ScheduledAction FaultSchedule::Next() {
  if (pending_.empty()) Generate();
  ScheduledAction action = std::move(pending_.front());
  pending_.pop_front();
  return action;
}

std::string FaultSchedule::RandomRegion(double scoped_probability) {
  if (options_.regions.empty() || !rng_.Chance(scoped_probability)) return "";
  return options_.regions[rng_.Below(options_.regions.size())];
}

absl::Duration FaultSchedule::RandomHold(int64_t min_ms, int64_t max_ms) {
  return absl::Milliseconds(rng_.Between(min_ms, max_ms));
}

FaultSpec FaultSchedule::RandomSpec(FaultKind kind) {
  FaultSpec spec;
  spec.kind = kind;
  const double t = rng_.Unit();
  if (t < 0.6) {
    spec.next_n = static_cast<uint32_t>(rng_.Between(1, 6));
  } else if (t < 0.9) {
    spec.probability = 0.02 + 0.28 * rng_.Unit();
    // Rounded so the printed schedule is exactly what is armed.
    *spec.probability = std::round(*spec.probability * 1000) / 1000;
    spec.seed = rng_.Between(1, 0xffffffffu);
  } else {
    spec.always = true;
  }
  switch (kind) {
    case FaultKind::kFailBlit: {
      spec.region = RandomRegion(0.5);
      const uint64_t op = rng_.Below(4);
      spec.op = op == 1   ? FenceKind::kMigrate
                : op == 2 ? FenceKind::kEvict
                          : FenceKind::kUnspecified;
      break;
    }
    case FaultKind::kFailClear:
      spec.region = RandomRegion(0.5);
      spec.op = rng_.Chance(0.5) ? FenceKind::kClear : FenceKind::kUnspecified;
      break;
    case FaultKind::kFailWorkAllocation: {
      spec.region = RandomRegion(0.3);
      const uint64_t op = rng_.Below(5);
      spec.op = op == 1   ? FenceKind::kClear
                : op == 2 ? FenceKind::kMigrate
                : op == 3 ? FenceKind::kEvict
                          : FenceKind::kUnspecified;
      break;
    }
    case FaultKind::kBanMemcpy:
      spec.region = RandomRegion(0.3);
      break;
    case FaultKind::kWedgeEngine:
      spec.region = RandomRegion(0.3);
      break;
    case FaultKind::kEngineLatency:
      spec.region = RandomRegion(0.3);
      spec.latency_us = static_cast<uint32_t>(rng_.Between(50, 2000));
      break;
    case FaultKind::kUnspecified:
      break;
  }
  return spec;
}

void FaultSchedule::Generate() {
  // Exponential gap with the configured mean, at millisecond resolution.
  const double mean_ms = absl::ToDoubleMilliseconds(options_.mean_gap);
  const double gap_ms = -mean_ms * std::log(1.0 - rng_.Unit());
  now_ += absl::Milliseconds(static_cast<int64_t>(gap_ms));

  auto inject = [&](FaultSpec spec, absl::Duration hold) {
    ScheduledAction a;
    a.index = next_index_++;
    a.at = now_;
    a.kind = ScheduledAction::Kind::kInject;
    a.spec = std::move(spec);
    a.hold = hold;
    pending_.push_back(std::move(a));
  };

  const uint64_t pick = rng_.Below(100);
  if (pick < 20) {
    inject(RandomSpec(FaultKind::kFailBlit), RandomHold(50, 1000));
  } else if (pick < 34) {
    inject(RandomSpec(FaultKind::kFailClear), RandomHold(50, 1000));
  } else if (pick < 44) {
    inject(RandomSpec(FaultKind::kFailWorkAllocation), RandomHold(50, 1000));
  } else if (pick < 50) {
    inject(RandomSpec(FaultKind::kBanMemcpy), RandomHold(50, 500));
  } else if (pick < 60) {
    // No fallback possible: a failed blit or clear marks unknown state.
    const absl::Duration hold = RandomHold(50, 500);
    FaultSpec ban = RandomSpec(FaultKind::kBanMemcpy);
    inject(std::move(ban), hold);
    inject(RandomSpec(rng_.Chance(0.6) ? FaultKind::kFailBlit
                                       : FaultKind::kFailClear),
           hold);
  } else if (pick < 64) {
    // The failsafe cannot be set up and memcpy is banned: ABORTED / FAILED,
    // never unknown state.
    const absl::Duration hold = RandomHold(50, 500);
    inject(RandomSpec(FaultKind::kBanMemcpy), hold);
    inject(RandomSpec(FaultKind::kFailWorkAllocation), hold);
  } else if (pick < 73) {
    // Wedge, then recovery when the hold ends.
    FaultSpec wedge = RandomSpec(FaultKind::kWedgeEngine);
    if (wedge.probability.has_value() || wedge.next_n > 0) {
      // Mostly a real wedge: every command fails until cleared.
      if (rng_.Chance(0.7)) {
        wedge.probability.reset();
        wedge.seed = 0;
        wedge.next_n = 0;
        wedge.always = true;
      }
    }
    inject(std::move(wedge), RandomHold(20, 300));
  } else if (pick < 85) {
    inject(RandomSpec(FaultKind::kEngineLatency), RandomHold(200, 2000));
  } else {
    ScheduledAction a;
    a.index = next_index_++;
    a.at = now_;
    a.kind = ScheduledAction::Kind::kEvict;
    a.region =
        options_.regions.empty()
            ? ""
            : (rng_.Chance(0.75)
                   ? options_.regions.front()
                   : options_.regions[rng_.Below(options_.regions.size())]);
    pending_.push_back(std::move(a));
  }
}

}  // namespace gpumig::torture
