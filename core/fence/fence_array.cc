#include "core/fence/fence_array.h"

#include <utility>

#include "absl/container/flat_hash_set.h"
#include "core/fence/fence_work.h"

namespace gpumig {
namespace {

void Count(FenceArray::Counters& c, ArrayMemberOutcome outcome) {
  switch (outcome) {
    case ArrayMemberOutcome::kBlitOk:
      c.blit_ok.fetch_add(1, std::memory_order_release);
      break;
    case ArrayMemberOutcome::kFallback:
      c.fallback.fetch_add(1, std::memory_order_release);
      break;
    case ArrayMemberOutcome::kUnknownState:
      c.unknown_state.fetch_add(1, std::memory_order_release);
      break;
    case ArrayMemberOutcome::kFailed:
      c.failed.fetch_add(1, std::memory_order_release);
      break;
  }
}

ArrayMemberOutcome DefaultClassify(size_t, const Fence& f) {
  return f.error().ok() ? ArrayMemberOutcome::kBlitOk
                        : ArrayMemberOutcome::kFailed;
}

}  // namespace

std::unique_ptr<FenceArray> FenceArray::Create(absl::string_view name,
                                               std::vector<FenceRef> members,
                                               Classifier classify) {
  auto counters = std::make_shared<Counters>();
  auto shared_classify = std::make_shared<Classifier>(
      classify ? std::move(classify) : Classifier(DefaultClassify));
  std::unique_ptr<FenceWork> work = FenceWork::CreateCoalescing(name);
  std::vector<FenceRef> kept;
  kept.reserve(members.size());
  absl::flat_hash_set<const Fence*> seen;
  seen.reserve(members.size());
  for (size_t i = 0; i < members.size(); ++i) {
    FenceRef& m = members[i];
    if (m == nullptr || !seen.insert(m.get()).second) continue;
    // The counting callback is added BEFORE the FenceWork's own callback on
    // the member (callbacks run in the order added), so the last member's
    // count is recorded before the array's fence signals.
    auto count = [counters, shared_classify, i](const Fence& f) {
      Count(*counters, (*shared_classify)(i, f));
    };
    if (!m->AddCallback(count).ok()) count(*m);  // already signalled
    // Cannot fail: not committed, not null, not a duplicate.
    (void)work->Await(m);
    kept.push_back(std::move(m));
  }
  (void)work->Commit();
  FenceRef fence = work->fence();
  return std::unique_ptr<FenceArray>(
      new FenceArray(std::move(fence), std::move(kept), std::move(counters)));
}

FenceArrayCounts FenceArray::counts() const {
  FenceArrayCounts c;
  c.members = static_cast<uint32_t>(members_.size());
  c.blit_ok = counters_->blit_ok.load(std::memory_order_acquire);
  c.fallback = counters_->fallback.load(std::memory_order_acquire);
  c.unknown_state = counters_->unknown_state.load(std::memory_order_acquire);
  c.failed = counters_->failed.load(std::memory_order_acquire);
  uint32_t done = c.blit_ok + c.fallback + c.unknown_state + c.failed;
  c.pending = done > c.members ? 0 : c.members - done;
  return c;
}

}  // namespace gpumig
