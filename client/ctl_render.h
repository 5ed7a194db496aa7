// gpumigctl's rendering of results: for each message of the client library
// (gpumig_client.h), its text for people (key/value blocks and aligned
// tables, cli_format.h) and its --json object (stable keys, docs/cli.md).
// Pure functions of their arguments: no I/O, thread-safe. The commands
// (ctl_commands.h) print what these return, so a command's output is
// exactly what its renderer's unit test sees.
#ifndef GPUMIG_CLIENT_CTL_RENDER_H_
#define GPUMIG_CLIENT_CTL_RENDER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "client/cli_format.h"
#include "client/gpumig_client.h"

namespace gpumig::cli {

// "none" for OK, else "<CODE>: <message>".
std::string StatusText(const absl::Status& s);

// Fences (FenceService.Get/Wait, a waited submission).
void JsonFence(JsonWriter& w, const client::FenceStatus& f);
std::string HumanFence(const client::FenceStatus& f);
// Key "fence" and the fence, or null when the call did not wait.
void JsonFenceField(JsonWriter& w, const std::optional<client::FenceStatus>& f);

// Objects (ObjectService.Get/List/Create).
void JsonObject(JsonWriter& w, const client::ObjectInfo& o);
std::string HumanObject(const client::ObjectInfo& o);
// {"objects": [...]}.
void JsonObjectList(JsonWriter& w,
                    const std::vector<client::ObjectInfo>& objects);
// One row per object; `with_owner` adds an OWNER column (list --all).
std::string ObjectTable(const std::vector<client::ObjectInfo>& objects,
                        bool with_owner);

// Regions (RegionService, GetStats).
void JsonRegion(JsonWriter& w, const client::RegionInfo& r);
std::string HumanRegion(const client::RegionInfo& r);
std::string RegionTable(const std::vector<client::RegionInfo>& regions);

// Faults (FaultService).
// "always", "p=<P> seed=<S>" or "next <N>".
std::string TriggerText(const client::FaultSpec& s);
void JsonFault(JsonWriter& w, const client::FaultInfo& f);
std::string FaultTable(const std::vector<client::FaultInfo>& faults);

// DRM devices and the daemon (DaemonService). `target` is where the client
// connected (it heads `info`).
void JsonDevice(JsonWriter& w, const client::DrmDeviceInfo& d);
// "0x%04x".
std::string PciId(uint32_t id);
std::string DeviceTable(const std::vector<client::DrmDeviceInfo>& devices);
void JsonInfo(JsonWriter& w, const client::DaemonInfo& info,
              absl::string_view target);
std::string HumanInfo(const client::DaemonInfo& info, absl::string_view target);
void JsonStats(JsonWriter& w, const client::DaemonStats& stats);
// Counters, then the RPC table, then the region table.
std::string HumanStats(const client::DaemonStats& stats);
void JsonSelfTest(JsonWriter& w, const client::SelfTestResult& r);
std::string HumanSelfTest(const client::SelfTestResult& r);

// Watch events (FenceService.Watch): one JSON object or one line each.
void JsonEvent(JsonWriter& w, const client::WatchEvent& e);
std::string HumanEvent(const client::WatchEvent& e);

}  // namespace gpumig::cli

#endif  // GPUMIG_CLIENT_CTL_RENDER_H_
