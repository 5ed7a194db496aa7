// The torture campaign's shared-buffer share (docs/api.md "Shared buffers").
//
// ShmIo: each client worker sends a share (CampaignOptions::shm_share) of
// its Writes and Reads through a SharedBuffer of its own -- WriteFromBuffer
// from, ReadToBuffer into, a random offset of the buffer -- instead of the
// streams. The worker checks the bytes exactly like every other Read (the
// buffer range is poisoned before each ReadToBuffer, so a copy that did not
// happen cannot pass), and handles the codes like Write/Read's: the daemon
// promises the same ordering, failsafe and unknown-state rules.
//
// ShmKiller: a thread that, every CampaignOptions::shm_kill_every, forks a
// victim process which registers a 1 MiB buffer (raw protocol, no gRPC in
// the child), then scribbles on it and punches holes in it without pause,
// while this process copies through the victim's buffer id (same uid, so
// the same principal) to and from a scratch object; the victim is SIGKILLed
// mid-copy. Findings ("shm" check): a copy through the live buffer refused
// with a code WriteFromBuffer/ReadToBuffer does not document, the buffer
// still usable after its client died (it must end with the connection), or
// the daemon not answering afterwards.
//
// Both are off on TCP and when the daemon has no shared-buffer socket.
// Thread-safety: one ShmIo per worker thread; ShmKiller::Run on one thread.
#ifndef GPUMIG_TESTS_TORTURE_CAMPAIGN_SHM_H_
#define GPUMIG_TESTS_TORTURE_CAMPAIGN_SHM_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client/gpumig_client.h"
#include "client/shared_buffer.h"
#include "tests/torture/campaign.h"
#include "tests/torture/rng.h"

namespace gpumig::torture {

class ShmIo {
 public:
  // `index`: the worker's; its choices come from a seed of their own, so the
  // rest of the worker's seeded sequence does not change with the share.
  ShmIo(const CampaignOptions& options, int index, uint64_t capacity);

  // Client::Write, or (in shm_share of the calls, once a buffer exists)
  // WriteFromBuffer of the same bytes. *method names the RPC used.
  absl::StatusOr<uint64_t> Write(client::Client& cl, const std::string& handle,
                                 absl::Span<const uint8_t> data,
                                 uint64_t offset,
                                 const client::CallOptions& call,
                                 CampaignStats* stats, const char** method);
  // Client::Read, or ReadToBuffer into a poisoned range of the buffer and a
  // copy out of it.
  absl::StatusOr<std::vector<uint8_t>> Read(client::Client& cl,
                                            const std::string& handle,
                                            uint64_t offset, uint64_t length,
                                            const client::CallOptions& call,
                                            CampaignStats* stats,
                                            const char** method);

 private:
  // Whether this call goes through the buffer (creating it on first use).
  bool UseBuffer(client::Client& cl, uint64_t length, CampaignStats* stats);

  const double share_;
  const bool tcp_;
  const uint64_t capacity_;
  Rng rng_;
  bool tried_ = false;
  std::optional<client::SharedBuffer> buffer_;
};

class ShmKiller {
 public:
  ShmKiller(Campaign* campaign, std::unique_ptr<client::Client> cl);
  // Kills victims until the campaign stops, then destroys its scratch
  // object (before the campaign's accounting check).
  void Run();
  CampaignStats& stats() { return stats_; }

 private:
  void Round(const std::string& shm_socket);
  bool EnsureScratch();
  bool Note(const char* method, const absl::Status& s);

  Campaign& c_;
  std::unique_ptr<client::Client> cl_;
  Rng rng_;
  std::string scratch_;
  CampaignStats stats_;
};

}  // namespace gpumig::torture

#endif  // GPUMIG_TESTS_TORTURE_CAMPAIGN_SHM_H_
