// The service fuzzers' harness: a real gpumigd (daemon::Daemon, sim device,
// fault injection on, small regions) started once per process on a unix
// socket in a temp directory, and a gRPC client that replays a fuzz input --
// a list of gpumig.v1 requests -- against it. Every request type of every
// gpumig.v1 service can appear in an input.
//
// Input schema (package gpumig.fuzz; built at run time on top of the
// generated gpumig.v1 descriptors, so no extra .proto is compiled):
//
//   message Actions { repeated Action actions = 1; }
//   message WriteStream { repeated gpumig.v1.WriteRequest messages = 1; }
//   message Action {
//     oneof action {
//       PingRequest ping = 1;            GetInfoRequest get_info = 2;
//       GetStatsRequest get_stats = 3;   SelfTestRequest self_test = 4;
//       CreateObjectRequest create = 10; DestroyObjectRequest destroy = 11;
//       GetObjectRequest get_object = 12;
//       ListObjectsRequest list_objects = 13;
//       WriteStream write = 14;          ReadRequest read = 15;
//       MigrateObjectRequest migrate = 16;
//       PinObjectRequest pin = 17;       UnpinObjectRequest unpin = 18;
//       ExecRequest exec = 19;
//       GetFenceRequest get_fence = 20;  WaitFenceRequest wait_fence = 21;
//       WatchRequest watch = 22;
//       ListRegionsRequest list_regions = 30;
//       GetRegionRequest get_region = 31;
//       EvictRegionRequest evict = 32;
//       InjectFaultRequest inject_fault = 40;
//       ClearFaultsRequest clear_faults = 41;
//       ListFaultsRequest list_faults = 42;
//       CreateBatchRequest create_batch = 50;
//       MigrateBatchRequest migrate_batch = 51;
//       DestroyBatchRequest destroy_batch = 52;
//       ExecBatchRequest exec_batch = 53;
//     }
//   }
//
// An input is a serialized Actions (binary), or Actions in protobuf text
// format when it starts with '#' (a comment line): the seed corpus is
// written that way, readable and editable. References, resolved per input:
// handle "#k" is the k-th object this input created (mod their count);
// fence ids 1..63 and fault ids 1..63 name the ((id - 1) mod n)-th fence /
// fault this input saw. Anything else is sent as is.
//
// Per input: the harness optionally runs a fixed setup (two objects, a
// migration, an armed and a cleared fault) so that service-focused fuzzers
// have handles, fences and faults to name; resolves references ("#k"
// handles, small fence and fault ids) to what this input created; clamps
// what would only make an input slow (RPC deadlines, Wait timeouts, engine
// latency, self-test size); runs the actions; then disarms every fault and
// destroys every object, so inputs do not accumulate state.
//
// Oracles besides the sanitizers: a gRPC status code outside the API's set
// (UNKNOWN, or INTERNAL from a method that does not document it) aborts; so
// does a batch reply that breaks its contract (not one result per entry,
// counts that do not add up, a fence on a failed entry, an entry code
// outside the API's set; batches run at most 64 entries, or 4097 to hit the
// maximum);
// every 256 inputs, and at the end of a replay, every region must drain
// back to zero allocated bytes and objects (a leak of blocks aborts).
//
// Thread-compatible: libFuzzer calls in from one thread.
#ifndef GPUMIG_TESTS_FUZZ_SERVICE_HARNESS_H_
#define GPUMIG_TESTS_FUZZ_SERVICE_HARNESS_H_

#include <cstddef>
#include <cstdint>

namespace gpumig::fuzz {

// Which services' actions an input may run (others are skipped).
enum Services : uint32_t {
  kDaemonService = 1 << 0,
  kObjectService = 1 << 1,
  kFenceService = 1 << 2,
  kRegionService = 1 << 3,
  kFaultService = 1 << 4,
  kAllServices = 0x1f,
};

// Runs one input (binary Actions, or text format if it starts with '#').
// `setup`: run the fixed setup first. Always returns 0 (libFuzzer's
// convention); aborts on an oracle violation.
int RunServiceInput(const uint8_t* data, size_t size, uint32_t services,
                    bool setup);

// Checks that the daemon drained (see above), shuts it down and frees it.
// For the replay driver; libFuzzer never calls it.
void ShutdownServiceHarness();

}  // namespace gpumig::fuzz

#endif  // GPUMIG_TESTS_FUZZ_SERVICE_HARNESS_H_
