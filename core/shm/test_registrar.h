// Test-only raw-protocol client for the registration socket (the real
// client is gpumig::client::SharedBuffer).
#ifndef GPUMIG_CORE_SHM_TEST_REGISTRAR_H_
#define GPUMIG_CORE_SHM_TEST_REGISTRAR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/shm/registration_protocol.h"

namespace gpumig {
namespace shm {

inline constexpr int kGoodSeals = 0x1 /*SEAL*/ | 0x2 /*SHRINK*/ | 0x4 /*GROW*/;

// A memfd of `size` bytes with `seals` added (0: none). -1 on failure.
int MakeMemfd(uint64_t size, int seals, bool allow_sealing = true);
// Connects a SOCK_SEQPACKET socket to `path`; -1 on failure.
int ConnectRegistration(const std::string& path);
// Sends `len` bytes and `fds` (one SCM_RIGHTS message) on `sock`.
bool SendRaw(int sock, const void* data, size_t len,
             const std::vector<int>& fds);
bool SendRequest(int sock, const ShmRequest& r, const std::vector<int>& fds);
// Receives one reply; false on EOF/error or a reply not 128 bytes.
bool RecvReply(int sock, ShmReply* out);

// Counts of /proc/self/fd entries and /proc/self/maps lines.
int CountOpenFds();
int CountMaps();
// Mappings of memfds this library made ("memfd:gpumig-test"): unlike
// CountMaps, not moved by a sanitizer's own allocator mappings.
int CountMemfdMaps();

}  // namespace shm
}  // namespace gpumig

#endif  // GPUMIG_CORE_SHM_TEST_REGISTRAR_H_
