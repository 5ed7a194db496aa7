#include "daemon/services/self_test.h"

#include <algorithm>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "daemon/auth/identity.h"

namespace gpumig {
namespace daemon {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kMaxScratchObject = 1 << 20;
constexpr size_t kMaxDetails = 100;
constexpr uint8_t kCanary = 0xc5;

Principal SelfTestPrincipal() {
  Principal p;
  p.uid = kNoUid;
  p.name = kSelfTestPrincipal;
  p.admin = false;
  return p;
}

// The pattern the self-test writes into fresh object `tag`: never 0 and
// never the canary.
std::vector<uint8_t> OwnPattern(uint64_t size, uint64_t tag) {
  std::vector<uint8_t> v(size);
  uint32_t x = static_cast<uint32_t>(tag) * 2654435761u + 7;
  for (uint64_t i = 0; i < size; ++i) {
    x = x * 1103515245u + 12345u;
    uint8_t b = static_cast<uint8_t>((x >> 16) | 1);
    if (b == kCanary) b = 0x5c;
    v[i] = b;
  }
  return v;
}

class Run {
 public:
  Run(MemoryManager& m, const SelfTestOptions& o) : m_(m), o_(o) {}

  ~Run() {
    for (uint64_t id : faults_) {
      (void)m_.faults().Remove(id);
    }
    for (uint64_t id : objects_) (void)m_.DestroyObject(who_, id);
  }

  absl::StatusOr<SelfTestResult> Go() {
    const std::vector<RegionInfo> regions = m_.ListRegions();
    bool any_created = false;
    for (const RegionInfo& r : regions) {
      if (absl::Status s = Step(); !s.ok()) return s;
      absl::StatusOr<bool> created = CheckRegion(r, regions);
      if (!created.ok()) return created.status();
      any_created = any_created || *created;
    }
    if (!any_created) {
      return absl::ResourceExhaustedError(
          "no room for the self-test's scratch objects in any region");
    }
    result_.passed = result_.violations == 0;
    Detail(absl::StrCat(result_.passed ? "passed" : "FAILED", ": ",
                        result_.objects_checked, " objects checked, ",
                        result_.violations, " violations"));
    return result_;
  }

 private:
  absl::Status Step() {
    if (o_.cancelled && o_.cancelled()) {
      return absl::CancelledError("the self-test was cancelled");
    }
    if (absl::Now() >= o_.deadline) {
      return absl::DeadlineExceededError("the self-test ran out of time");
    }
    return absl::OkStatus();
  }

  void Detail(std::string line) {
    if (result_.details.size() < kMaxDetails) {
      result_.details.push_back(std::move(line));
    }
  }

  void Violation(const std::string& what) {
    ++result_.violations;
    Detail(absl::StrCat("VIOLATION: ", what));
  }

  absl::StatusOr<uint64_t> Create(const std::string& region,
                                  const std::vector<std::string>& placements,
                                  uint64_t size) {
    MemoryManager::CreateRequest req;
    req.size = size;
    req.placements = placements;
    req.label = "selftest";
    absl::StatusOr<MemoryManager::CreateResult> r = m_.CreateObject(who_, req);
    if (!r.ok()) return r.status();
    objects_.push_back(r->object_id);
    return r->object_id;
  }

  void Destroy(uint64_t id) {
    (void)m_.DestroyObject(who_, id);
    objects_.erase(std::remove(objects_.begin(), objects_.end(), id),
                   objects_.end());
  }

  // Returns whether any scratch object could be created in `r`.
  absl::StatusOr<bool> CheckRegion(const RegionInfo& r,
                                   const std::vector<RegionInfo>& all) {
    // 1. Canaries over the region's free memory, up to the budget.
    uint64_t budget = std::min(o_.bytes_per_region, r.usage.free_bytes);
    budget -= budget % kPage;
    std::vector<uint64_t> sizes;
    std::vector<uint64_t> canaries;
    while (budget > 0) {
      if (absl::Status s = Step(); !s.ok()) return s;
      const uint64_t size = std::min(budget, kMaxScratchObject);
      absl::StatusOr<uint64_t> id = Create(r.name, {r.name}, size);
      if (!id.ok())
        break;  // Fragmented or taken meanwhile: check what we have.
      const std::vector<uint8_t> canary(size, kCanary);
      absl::Status w = m_.Write(who_, *id, 0, canary, o_.deadline);
      if (!w.ok()) {
        Detail(absl::StrCat(r.name, ": canary write failed: ", w.message()));
      } else {
        result_.canary_bytes_written += size;
      }
      canaries.push_back(*id);
      sizes.push_back(size);
      budget -= size;
    }
    for (uint64_t id : canaries) Destroy(id);
    if (sizes.empty()) {
      Detail(absl::StrCat(r.name, ": no free memory to test"));
      return false;
    }
    Detail(absl::StrCat(r.name, ": ", sizes.size(), " canary objects, ",
                        result_.canary_bytes_written, " canary bytes so far"));

    // 2. Faults on this region's clears and migrations into it.
    std::vector<std::string> placements = {r.name};
    for (const RegionInfo& other : all) {
      if (other.name != r.name) placements.push_back(other.name);
    }
    if (o_.with_faults) {
      FaultSpec clear;
      clear.kind = FaultKind::kFailClear;
      clear.trigger = FaultTrigger::kNextN;
      clear.next_n = static_cast<uint32_t>(sizes.size());
      clear.region = r.name;
      clear.op = "clear";
      absl::StatusOr<uint64_t> id = m_.faults().Add(clear);
      if (id.ok()) faults_.push_back(*id);
      if (placements.size() > 1) {
        FaultSpec blit;
        blit.kind = FaultKind::kFailBlit;
        blit.trigger = FaultTrigger::kNextN;
        blit.next_n = static_cast<uint32_t>(sizes.size());
        blit.region = placements[1];
        blit.op = "copy";
        absl::StatusOr<uint64_t> bid = m_.faults().Add(blit);
        if (bid.ok()) faults_.push_back(*bid);
      }
    }

    // 3. Fresh objects over the same blocks.
    std::vector<uint64_t> fresh;
    for (uint64_t size : sizes) {
      if (absl::Status s = Step(); !s.ok()) return s;
      absl::StatusOr<uint64_t> id = Create(r.name, placements, size);
      if (!id.ok()) {
        Detail(absl::StrCat(
            r.name, ": fresh object not created: ", id.status().message()));
        continue;
      }
      fresh.push_back(*id);
      std::vector<uint8_t> got(size);
      absl::Status rd = m_.Read(who_, *id, 0, absl::MakeSpan(got), o_.deadline);
      ++result_.objects_checked;
      if (absl::IsDataLoss(rd)) {
        Detail(absl::StrCat(r.name,
                            ": fresh object refused (unknown state), "
                            "as the failsafe must"));
      } else if (!rd.ok()) {
        Detail(absl::StrCat(r.name, ": fresh read failed: ", rd.message()));
      } else {
        uint64_t stale = 0, canary = 0;
        for (uint8_t b : got) {
          if (b != 0) ++stale;
          if (b == kCanary) ++canary;
        }
        if (stale != 0) {
          Violation(absl::StrCat(r.name, ": fresh object of ", size,
                                 " bytes has ", stale, " non-zero bytes (",
                                 canary, " canary)"));
        }
      }
      // Migration over reused blocks: must read back exactly.
      if (placements.size() < 2) continue;
      const std::vector<uint8_t> mine = OwnPattern(size, *id);
      if (!m_.Write(who_, *id, 0, mine, o_.deadline).ok()) continue;
      absl::StatusOr<uint64_t> fence = m_.Migrate(who_, *id, placements[1]);
      if (!fence.ok()) {
        Detail(absl::StrCat(
            r.name, ": migration not started: ", fence.status().message()));
        continue;
      }
      absl::Status back =
          m_.Read(who_, *id, 0, absl::MakeSpan(got), o_.deadline);
      ++result_.objects_checked;
      if (absl::IsDataLoss(back)) {
        Detail(absl::StrCat(r.name, " -> ", placements[1],
                            ": migrated object refused (unknown state)"));
      } else if (!back.ok()) {
        Detail(absl::StrCat(r.name, " -> ", placements[1],
                            ": read after migration failed: ", back.message()));
      } else if (got != mine) {
        uint64_t wrong = 0;
        for (uint64_t i = 0; i < size; ++i) wrong += got[i] != mine[i];
        Violation(absl::StrCat(r.name, " -> ", placements[1],
                               ": migrated object has ", wrong,
                               " bytes that are not its own"));
      }
    }

    // 4. Clean up this region's round.
    for (uint64_t id : faults_) (void)m_.faults().Remove(id);
    faults_.clear();
    for (uint64_t id : fresh) Destroy(id);
    return true;
  }

  MemoryManager& m_;
  const SelfTestOptions& o_;
  const Principal who_ = SelfTestPrincipal();
  SelfTestResult result_;
  std::vector<uint64_t> objects_;
  std::vector<uint64_t> faults_;
};

}  // namespace

absl::StatusOr<SelfTestResult> RunSelfTest(MemoryManager& manager,
                                           const SelfTestOptions& options) {
  Run run(manager, options);
  return run.Go();
}

}  // namespace daemon
}  // namespace gpumig
