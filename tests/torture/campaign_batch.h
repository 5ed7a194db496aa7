// BatchClient: the torture campaign's batch client (campaign.h). One more
// client thread, beside the campaign's workers, that drives the batch RPCs
// (CreateBatch, MigrateBatch, ExecBatch, DestroyBatch) on objects of its
// own while the scheduler injects faults, and checks the fence-array
// contract on every batch:
//   (a) the array signals only after all its members: when the array reads
//       SIGNALED, every member fence does too, none signalled later than
//       the array;
//   (b) it carries the first member error: OK iff every member is OK;
//       otherwise the error of a failed member that no other failed member
//       (with a different error) signalled before;
//   (c) its counts: one member per submitted entry (in entry order), the
//       outcome counts add up to the members, nothing pending; and
//       succeeded + failed = entries, a fence exactly on each OK entry;
//   (d) content: after each batch, every object the batch left OK reads
//       back exactly its shadow (migrations preserve content; ExecBatch
//       fills land in request order; Checksum results equal the shadow's
//       FNV-1a).
// Findings go to Campaign::AddViolation under the check "batch" (content
// under "content"). An object whose content became uncertain (a Fill or
// Write the engine failed, an entry that ended UNKNOWN_STATE) is dropped
// from the checks and destroyed with the next DestroyBatch.
//
// Thread-compatible: one thread calls Run().
#ifndef GPUMIG_TESTS_TORTURE_CAMPAIGN_BATCH_H_
#define GPUMIG_TESTS_TORTURE_CAMPAIGN_BATCH_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "client/gpumig_client.h"
#include "tests/torture/campaign.h"
#include "tests/torture/rng.h"

namespace gpumig::torture {

class BatchClient {
 public:
  // `index` is the client index its patterns carry (after the workers').
  BatchClient(Campaign* campaign, int index,
              std::unique_ptr<client::Client> client);

  // Rounds of create / write / migrate / exec / destroy batches until the
  // campaign stops or its op budget is spent; destroys what it holds.
  void Run();
  CampaignStats& stats() { return stats_; }

 private:
  struct Obj {
    std::string handle;
    uint32_t serial = 0;
    uint64_t size = 0;
    uint32_t version = 0;
    std::vector<uint8_t> shadow;
    bool uncertain = false;  // content no longer checkable
  };

  void Round();
  void CreateSome();
  void MigrateSome();
  void ExecSome();
  void DestroyAll();
  // The array checks (a)-(c); false if the array could not be examined.
  bool CheckArray(const char* method, size_t entries,
                  const client::BatchResult& r);
  void CheckContent(const char* after);
  bool Note(const char* method, const absl::Status& s);
  void Violation(const std::string& check, const std::string& key,
                 const std::string& what);
  client::CallOptions Call() const;

  Campaign& c_;
  const int index_;
  Rng rng_;
  std::unique_ptr<client::Client> cl_;
  std::vector<Obj> objects_;
  std::vector<std::string> doomed_;  // uncertain, destroyed next round
  uint32_t next_serial_ = 1;
  CampaignStats stats_;
};

}  // namespace gpumig::torture

#endif  // GPUMIG_TESTS_TORTURE_CAMPAIGN_BATCH_H_
