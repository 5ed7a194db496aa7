// gpumigctl's batch forms of create, migrate and destroy (ObjectService's
// CreateBatch, MigrateBatch, DestroyBatch):
//   gpumigctl create SIZE --count N      N objects in one RPC
//   gpumigctl migrate H1 H2 ... REGION   every handle to REGION
//   gpumigctl destroy H1 H2 ...          every handle
// One line per entry in request order ("<handle> -> <region>: fence F",
// "<handle>: <CODE>: <message>"), then a summary line with the fence array;
// with --json one object: {"entries": [{"handle", "error_code", "error",
// "error_message", "fence_id"[, "object"]}...], "succeeded", "failed",
// "fence_id", "fence"} ("fence" null unless --wait; it lists the array's
// members and counts). Exit status: the first failed entry's code (3
// NOT_FOUND, 4 PERMISSION_DENIED, ...), else the array's (--wait: 7 if a
// member ended UNKNOWN_STATE, 12 if FAILED), else 0.
#ifndef GPUMIG_CLIENT_CTL_BATCH_H_
#define GPUMIG_CLIENT_CTL_BATCH_H_

#include <cstdint>

#include "client/ctl_context.h"
#include "client/gpumig_client.h"

namespace gpumig::cli {

// create --count: `count` objects as `options` (from create's flags).
// migrate: the handles, then REGION; destroy: the handles (positionals).
int RunCreateBatch(Ctx& ctx, const client::CreateObjectOptions& options,
                   uint64_t count);
int RunMigrateBatch(Ctx& ctx);
int RunDestroyBatch(Ctx& ctx);

}  // namespace gpumig::cli

#endif  // GPUMIG_CLIENT_CTL_BATCH_H_
