// FenceArray: one fence over many (Linux's dma_fence_array), the fence a
// batch RPC returns over every entry's fence.
//
// Built on a coalescing-only FenceWork (patch 6): the array's fence signals
// inline from the callback that signalled the LAST member -- no thread hop,
// no work queue -- and it is on no timeline of its own (context 0): it orders
// nothing, it only reports when every member is done.
//
//  * First error wins, in SIGNAL order: the array carries the error of the
//    first member to signal with an error (FenceWork's rule; members that had
//    already signalled when the array was built count in member order). On one
//    in-order copy engine this is the lowest-index failing entry.
//  * Outcome counts: each member is classified once, when it signals, by the
//    caller's Classifier (default: OK -> kBlitOk, error -> kFailed). The
//    counts of every member are final before the array's fence signals, so a
//    reader that observes the signal sees total == the sum of the four.
//  * Zero members: the fence is signalled (OK) on return from Create().
//
// Thread-safety: immutable after Create() apart from the counters, which
// are atomics. The FenceArray may be destroyed at any time; pending member
// callbacks keep the shared state alive.
#ifndef GPUMIG_CORE_FENCE_FENCE_ARRAY_H_
#define GPUMIG_CORE_FENCE_FENCE_ARRAY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/fence/fence.h"

namespace gpumig {

enum class ArrayMemberOutcome { kBlitOk, kFallback, kUnknownState, kFailed };

struct FenceArrayCounts {
  uint32_t members = 0;
  uint32_t blit_ok = 0;
  uint32_t fallback = 0;
  uint32_t unknown_state = 0;
  uint32_t failed = 0;
  uint32_t pending = 0;  // members - the four above
};

class FenceArray {
 public:
  // Called once per member with its index in the `members` passed to
  // Create(), from the member's signalling thread (or from Create() for
  // members already signalled). Must not block.
  using Classifier =
      std::function<ArrayMemberOutcome(size_t index, const Fence& member)>;

  // Null members are skipped; a fence listed twice counts once.
  static std::unique_ptr<FenceArray> Create(absl::string_view name,
                                            std::vector<FenceRef> members,
                                            Classifier classify = nullptr);

  FenceArray(const FenceArray&) = delete;
  FenceArray& operator=(const FenceArray&) = delete;
  ~FenceArray() = default;

  const FenceRef& fence() const { return fence_; }
  const std::vector<FenceRef>& members() const { return members_; }
  FenceArrayCounts counts() const;

  struct Counters {
    std::atomic<uint32_t> blit_ok{0};
    std::atomic<uint32_t> fallback{0};
    std::atomic<uint32_t> unknown_state{0};
    std::atomic<uint32_t> failed{0};
  };

 private:
  FenceArray(FenceRef fence, std::vector<FenceRef> members,
             std::shared_ptr<Counters> counters)
      : fence_(std::move(fence)),
        members_(std::move(members)),
        counters_(std::move(counters)) {}

  // Constant after construction.
  FenceRef fence_;
  std::vector<FenceRef> members_;
  std::shared_ptr<Counters> counters_;
};

}  // namespace gpumig

#endif  // GPUMIG_CORE_FENCE_FENCE_ARRAY_H_
