// gpumigctl's rendering of the main messages, text and --json, exactly as
// the CLI prints them (the commands print what these functions return).
#include "client/ctl_render.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/cli_format.h"
#include "client/gpumig_client.h"
#include "gtest/gtest.h"

namespace gpumig::cli {
namespace {

namespace gc = ::gpumig::client;

// 2001-09-09T01:46:40.123Z.
constexpr int64_t kCreated = 1'000'000'000'123'456'789;

template <typename T, typename Fn>
std::string Json(const T& value, Fn&& render) {
  JsonWriter w;
  render(w, value);
  return w.str();
}

gc::FenceStatus FallbackFence() {
  gc::FenceStatus f;
  f.fence_id = 42;
  f.state = gc::FenceState::kSignaled;
  f.outcome = gc::FenceOutcome::kFallbackCopy;
  f.engine_error = absl::InternalError("blit failed");
  f.kind = gc::FenceKind::kMigrate;
  f.handle = "obj-7";
  f.source_region = "lmem";
  f.target_region = "smem";
  f.timeline = "smem-evict";
  f.seqno = 3;
  f.created_unix_nanos = kCreated;
  f.signaled_unix_nanos = kCreated + 1'500'000;
  return f;
}

gc::ObjectInfo UnknownObject() {
  gc::ObjectInfo o;
  o.handle = "obj-7";
  o.size_bytes = 65536;
  o.placements = {"lmem", "smem"};
  o.region = "lmem";
  o.state = gc::ObjectState::kUnknown;
  o.unknown_reason = "blit failed outside the aperture";
  o.unknown_fence_id = 42;
  o.pin_count = 1;
  o.label = "weights";
  o.owner = "uid:1000";
  o.move_fence_id = 42;
  o.last_fence_id = 43;
  o.created_unix_nanos = kCreated;
  o.require_cpu_access = false;
  o.cpu_accessible = false;
  return o;
}

TEST(CtlRenderTest, FenceTextShowsEngineErrorAndRegions) {
  EXPECT_EQ(HumanFence(FallbackFence()),
            "fence         42\n"
            "state         SIGNALED\n"
            "outcome       FALLBACK_COPY\n"
            "error         none\n"
            "engine error  INTERNAL: blit failed\n"
            "kind          MIGRATE\n"
            "object        obj-7\n"
            "regions       lmem -> smem\n"
            "timeline      smem-evict #3\n"
            "created       2001-09-09T01:46:40.123Z\n"
            "signaled      2001-09-09T01:46:40.124Z (after 1.5ms)\n");
}

TEST(CtlRenderTest, PendingFenceTextOmitsWhatItDoesNotHave) {
  gc::FenceStatus f;
  f.fence_id = 5;
  f.state = gc::FenceState::kPending;
  f.kind = gc::FenceKind::kClear;
  f.target_region = "lmem";
  EXPECT_EQ(HumanFence(f),
            "fence    5\n"
            "state    PENDING\n"
            "outcome  UNSPECIFIED\n"
            "error    none\n"
            "kind     CLEAR\n"
            "regions  lmem\n"
            "created  -\n");
}

TEST(CtlRenderTest, FenceJsonHasEveryKeyWithCodesAndNames) {
  gc::FenceStatus f = FallbackFence();
  f.error = absl::DataLossError("gone");
  EXPECT_EQ(Json(f, JsonFence),
            R"({"fence_id":42,"state":"SIGNALED","outcome":"FALLBACK_COPY",)"
            R"("error_code":15,"error":"DATA_LOSS","error_message":"gone",)"
            R"("engine_error_code":13,"engine_error":"INTERNAL",)"
            R"("engine_error_message":"blit failed","kind":"MIGRATE",)"
            R"("handle":"obj-7","source_region":"lmem","target_region":"smem",)"
            R"("timeline":"smem-evict","seqno":3,)"
            R"("created_unix_nanos":1000000000123456789,)"
            R"("signaled_unix_nanos":1000000000124956789})");
}

TEST(CtlRenderTest, UnknownStateObjectTextSaysWhy) {
  EXPECT_EQ(HumanObject(UnknownObject()),
            "handle          obj-7\n"
            "size            65536 (64 KiB)\n"
            "region          lmem\n"
            "placements      lmem,smem\n"
            "state           UNKNOWN\n"
            "unknown reason  blit failed outside the aperture\n"
            "unknown fence   42\n"
            "cpu accessible  no\n"
            "require cpu     no\n"
            "pin count       1\n"
            "label           weights\n"
            "owner           uid:1000\n"
            "move fence      42\n"
            "last fence      43\n"
            "created         2001-09-09T01:46:40.123Z\n");
}

TEST(CtlRenderTest, ObjectJsonHasEveryKey) {
  EXPECT_EQ(Json(UnknownObject(), JsonObject),
            R"({"handle":"obj-7","size_bytes":65536,)"
            R"("placements":["lmem","smem"],"region":"lmem",)"
            R"("state":"UNKNOWN",)"
            R"("unknown_reason":"blit failed outside the aperture",)"
            R"("unknown_fence_id":42,"pin_count":1,"label":"weights",)"
            R"("owner":"uid:1000","move_fence_id":42,"last_fence_id":43,)"
            R"("created_unix_nanos":1000000000123456789,)"
            R"("require_cpu_access":false,"cpu_accessible":false})");
}

TEST(CtlRenderTest, ListTableShowsOwnerOnlyForAll) {
  gc::ObjectInfo a = UnknownObject();
  gc::ObjectInfo b;
  b.handle = "obj-8";
  b.size_bytes = 4096;
  b.region = "smem";
  b.state = gc::ObjectState::kOk;
  b.cpu_accessible = true;
  b.last_fence_id = 9;
  b.owner = "uid:0";
  const std::vector<gc::ObjectInfo> objects = {a, b};
  EXPECT_EQ(ObjectTable(objects, /*with_owner=*/false),
            "HANDLE    SIZE  REGION  STATE    CPU  PINS  FENCE  LABEL\n"
            "obj-7   64 KiB  lmem    UNKNOWN  no      1     43  weights\n"
            "obj-8    4 KiB  smem    OK       yes     0      9\n");
  EXPECT_EQ(ObjectTable(objects, /*with_owner=*/true),
            "HANDLE    SIZE  REGION  STATE    CPU  PINS  FENCE  LABEL    "
            "OWNER\n"
            "obj-7   64 KiB  lmem    UNKNOWN  no      1     43  weights  "
            "uid:1000\n"
            "obj-8    4 KiB  smem    OK       yes     0      9           "
            "uid:0\n");
}

TEST(CtlRenderTest, ListJsonIsOneObjectWithAnArray) {
  EXPECT_EQ(Json(std::vector<gc::ObjectInfo>{}, JsonObjectList),
            R"({"objects":[]})");
  gc::ObjectInfo o;
  o.handle = "obj-1";
  const std::string json =
      Json(std::vector<gc::ObjectInfo>{o, o}, JsonObjectList);
  EXPECT_EQ(json.rfind(R"({"objects":[{"handle":"obj-1",)", 0), 0u) << json;
  EXPECT_NE(json.find(R"(},{"handle":"obj-1",)"), std::string::npos) << json;
  EXPECT_EQ(json.substr(json.size() - 3), "}]}");
}

gc::DaemonInfo Info() {
  gc::DaemonInfo info;
  info.version = "gpumigd 0.1.0";
  info.backend = "sim";
  info.device_name = "sim device";
  gc::DrmDeviceInfo d;
  d.driver = "i915";
  d.bus_id = "pci:0000:00:02.0";
  d.render_node = "/dev/dri/renderD128";
  d.pci_vendor_id = 0x8086;
  d.pci_device_id = 0x56a0;
  info.drm_devices = {d};
  info.start_unix_nanos = kCreated;
  info.uptime_nanos = 3'723'500'000'000;
  info.fault_injection_enabled = true;
  info.caller = {"uid:1000", 1000, false};
  info.limits = {1 << 20, 4096, 1000};
  return info;
}

TEST(CtlRenderTest, InfoTextHeadsWithTheTarget) {
  EXPECT_EQ(HumanInfo(Info(), "unix:/run/gpumig/gpumig.sock"),
            "target           unix:/run/gpumig/gpumig.sock\n"
            "version          gpumigd 0.1.0\n"
            "backend          sim\n"
            "device           sim device\n"
            "drm devices      1\n"
            "started          2001-09-09T01:46:40.123Z\n"
            "uptime           1h2m3s\n"
            "fault injection  enabled\n"
            "caller           uid:1000 (uid 1000)\n"
            "max chunk        1 MiB\n"
            "page size        4 KiB\n"
            "max list page    1000\n");
  gc::DaemonInfo admin = Info();
  admin.caller = {"uid:0", 0, true};
  admin.fault_injection_enabled = false;
  const std::string text = HumanInfo(admin, "t");
  EXPECT_NE(text.find("caller           uid:0 (uid 0, admin)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("fault injection  disabled\n"), std::string::npos);
}

TEST(CtlRenderTest, InfoJsonNestsDevicesCallerAndLimits) {
  JsonWriter w;
  JsonInfo(w, Info(), "unix:s");
  EXPECT_EQ(w.str(),
            R"({"version":"gpumigd 0.1.0","backend":"sim",)"
            R"("device_name":"sim device","drm_devices":[{"driver":"i915",)"
            R"("bus_id":"pci:0000:00:02.0",)"
            R"("render_node":"/dev/dri/renderD128","primary_node":"",)"
            R"("pci_vendor_id":32902,"pci_device_id":22176}],)"
            R"("start_unix_nanos":1000000000123456789,)"
            R"("uptime_nanos":3723500000000,)"
            R"("fault_injection_enabled":true,)"
            R"("caller":{"name":"uid:1000","uid":1000,"is_admin":false},)"
            R"("limits":{"max_chunk_bytes":1048576,"page_bytes":4096,)"
            R"("max_list_page_size":1000},"target":"unix:s"})");
}

TEST(CtlRenderTest, DeviceTableShowsMissingNodesAsDashes) {
  EXPECT_EQ(DeviceTable(Info().drm_devices),
            "DRIVER  BUS               RENDER               PRIMARY  VENDOR  "
            "DEVICE\n"
            "i915    pci:0000:00:02.0  /dev/dri/renderD128  -        0x8086  "
            "0x56a0\n");
}

gc::DaemonStats Stats(bool shared_buffers) {
  gc::DaemonStats s;
  s.rpcs = {{"/gpumig.v1.ObjectService/Create", 12, 1},
            {"/gpumig.v1.DaemonService/Ping", 3, 0}};
  s.objects = 2;
  s.unknown_state_objects = 1;
  s.fences_pending = 0;
  s.fence_history_size = 4096;
  s.fences_created = 20;
  s.watchers = 1;
  s.engine_wedged = false;
  gc::RegionInfo lmem;
  lmem.name = "lmem";
  lmem.kind = gc::RegionKind::kLmem;
  lmem.size_bytes = 64 << 20;
  lmem.aperture_bytes = 16 << 20;
  lmem.allocated_bytes = 128 << 10;
  lmem.free_bytes = (64 << 20) - (128 << 10);
  lmem.objects = 2;
  lmem.unknown_state_objects = 1;
  lmem.counters.evictions = 4;
  lmem.counters.blits = 10;
  lmem.counters.blit_failures = 2;
  lmem.counters.fallback_copies = 1;
  lmem.counters.fallback_clears = 1;
  s.regions = {lmem};
  if (shared_buffers) {
    s.shared_buffers = {true, 2,       32 << 20, 1,  3,          1,
                        1,    1 << 20, 2 << 20,  64, 4ull << 30, 16ull << 30};
  }
  return s;
}

TEST(CtlRenderTest, StatsTextHasCountersRpcsAndRegions) {
  EXPECT_EQ(HumanStats(Stats(/*shared_buffers=*/false)),
            "objects                2\n"
            "unknown-state objects  1\n"
            "fences pending         0\n"
            "fences created         20\n"
            "fence history          4096\n"
            "watchers               1\n"
            "engine wedged          no\n"
            "shared buffers         off\n"
            "\n"
            "METHOD                           CALLS  ERRORS\n"
            "/gpumig.v1.ObjectService/Create     12       1\n"
            "/gpumig.v1.DaemonService/Ping        3       0\n"
            "\n"
            "NAME  KIND    SIZE  APERTURE     USED      FREE  OBJECTS  "
            "EVICTIONS  BLITS  FAILURES  FALLBACKS  UNKNOWN\n"
            "lmem  LMEM  64 MiB    16 MiB  128 KiB  63.9 MiB        2          "
            "4     10         2          2        1\n");
}

TEST(CtlRenderTest, StatsTextDescribesSharedBuffersWhenOn) {
  const std::string text = HumanStats(Stats(/*shared_buffers=*/true));
  EXPECT_NE(text.find("shared buffers         2 (32 MiB) on 1 connection(s); "
                      "limits 64 and 4 GiB per principal, 16 GiB in all\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("shared-buffer copies   1 MiB written, 2 MiB read; 3 "
                      "registered, 1 refused, 1 unregistered\n"),
            std::string::npos)
      << text;
}

TEST(CtlRenderTest, StatsJsonHasRpcsRegionsAndSharedBuffers) {
  JsonWriter w;
  JsonStats(w, Stats(/*shared_buffers=*/true));
  const std::string& json = w.str();
  EXPECT_EQ(json.rfind(R"({"rpcs":[{"method":"/gpumig.v1.ObjectService/)"
                       R"(Create","calls":12,"errors":1},)",
                       0),
            0u)
      << json;
  EXPECT_NE(json.find(R"("objects":2,"unknown_state_objects":1,)"
                      R"("fences_pending":0,"fence_history_size":4096,)"
                      R"("fences_created":20,"watchers":1,)"
                      R"("engine_wedged":false,"regions":[{"name":"lmem",)"
                      R"("kind":"LMEM",)"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("counters":{"evictions":4,"blits":10,)"
                      R"("blit_failures":2,"fallback_copies":1,)"
                      R"("fallback_clears":1,"unknown_state_marks":0,)"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("shared_buffers":{"enabled":true,"buffers":2,)"
                      R"("bytes":33554432,"connections":1,"registrations":3,)"
                      R"("rejections":1,"unregistrations":1,)"
                      R"("bytes_written":1048576,"bytes_read":2097152,)"
                      R"("max_buffers_per_principal":64,)"
                      R"("max_bytes_per_principal":4294967296,)"
                      R"("max_total_bytes":17179869184}})"),
            std::string::npos)
      << json;
}

TEST(CtlRenderTest, FaultTriggerAndTable) {
  gc::FaultInfo f;
  f.id = 3;
  f.spec.kind = gc::FaultKind::kFailBlit;
  f.spec.probability = 0.25;
  f.spec.seed = 7;
  f.fired_count = 2;
  gc::FaultInfo g;
  g.id = 4;
  g.spec.kind = gc::FaultKind::kEngineLatency;
  g.spec.always = true;
  g.spec.region = "lmem";
  g.spec.latency_us = 50;
  g.exhausted = true;
  EXPECT_EQ(TriggerText(f.spec), "p=0.25 seed=7");
  EXPECT_EQ(FaultTable({f, g}),
            "ID  KIND            TRIGGER        REGION  OP  LATENCY  FIRED  "
            "EXHAUSTED\n"
            " 3  FAIL_BLIT       p=0.25 seed=7  *       *         -      2  "
            "no\n"
            " 4  ENGINE_LATENCY  always         lmem    *      50us      0  "
            "yes\n");
}

TEST(CtlRenderTest, DroppedEventLineCountsLostEvents) {
  gc::WatchEvent e;
  e.event_seqno = 9;
  e.kind = gc::EventKind::kDropped;
  e.dropped_events = 5;
  EXPECT_EQ(HumanEvent(e), "event 9  DROPPED  5 events lost\n");
  e.kind = gc::EventKind::kFallbackTaken;
  e.handle = "obj-7";
  e.fence = FallbackFence();
  EXPECT_EQ(HumanEvent(e),
            "event 9  FALLBACK_TAKEN  obj-7  fence 42 MIGRATE FALLBACK_COPY  "
            "engine INTERNAL: blit failed\n");
}

}  // namespace
}  // namespace gpumig::cli
