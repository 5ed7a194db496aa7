// gpumigctl's ObjectService: create, destroy, get, list, write, read, migrate,
// pin, unpin, exec fill/copy/checksum.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli_args.h"
#include "client/cli_format.h"
#include "client/ctl_commands.h"
#include "client/ctl_context.h"
#include "client/ctl_render.h"
#include "client/gpumig_client.h"

namespace gpumig::cli {
namespace {

namespace gc = ::gpumig::client;

int RunCreate(Ctx& ctx) {
  absl::StatusOr<uint64_t> size = ParseSize(ctx.pos()[0]);
  if (!size.ok()) return ctx.Error(size.status());
  gc::CreateObjectOptions options;
  options.size_bytes = *size;
  if (std::optional<std::string> p = ctx.args.Get("placements")) {
    options.placements = SplitList(*p);
    if (options.placements.empty()) {
      return ctx.Error(
          absl::InvalidArgumentError("--placements: no region named"));
    }
  }
  options.require_cpu_access = ctx.args.Has("cpu");
  options.pin = ctx.args.Has("pin");
  options.label = ctx.args.GetOr("label", "");
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::CreateObjectResult> r =
      client->CreateObject(options, ctx.call);
  if (!r.ok()) return ctx.Error(r.status());
  if (ctx.json) {
    JsonWriter w;
    w.BeginObject();
    w.Key("object");
    JsonObject(w, r->object);
    w.FieldUint("fence_id", r->fence_id);
    w.EndObject();
    ctx.PrintJson(w);
  } else if (ctx.args.Has("quiet")) {
    ctx.Print(absl::StrCat(r->object.handle, "\n"));
  } else {
    ctx.Print(absl::StrCat(
        "created ", r->object.handle, ": ", FormatSize(r->object.size_bytes),
        " in ", r->object.region, ", clear fence ", r->fence_id, "\n"));
  }
  return kExitOk;
}

int RunDestroy(Ctx& ctx) {
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  absl::Status s = client->DestroyObject(ctx.pos()[0], ctx.call);
  if (!s.ok()) return ctx.Error(s);
  return PrintResult(
      ctx,
      [&](JsonWriter& w) {
        w.BeginObject();
        w.Field("handle", ctx.pos()[0]);
        w.FieldBool("destroyed", true);
        w.EndObject();
      },
      [&] { return absl::StrCat("destroyed ", ctx.pos()[0], "\n"); });
}

int RunGet(Ctx& ctx) {
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::ObjectInfo> o = client->GetObject(ctx.pos()[0], ctx.call);
  if (!o.ok()) return ctx.Error(o.status());
  return PrintResult(
      ctx, [&](JsonWriter& w) { JsonObject(w, *o); },
      [&] { return HumanObject(*o); });
}

int RunList(Ctx& ctx) {
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  const bool all = ctx.args.Has("all");
  absl::StatusOr<std::vector<gc::ObjectInfo>> objects =
      client->ListObjects(all, ctx.call);
  if (!objects.ok()) return ctx.Error(objects.status());
  return PrintResult(
      ctx, [&](JsonWriter& w) { JsonObjectList(w, *objects); },
      [&] { return ObjectTable(*objects, all); });
}

int RunWrite(Ctx& ctx) {
  absl::StatusOr<uint64_t> offset = SizeFlag(ctx, "offset", 0);
  if (!offset.ok()) return ctx.Error(offset.status());
  const std::string& handle = ctx.pos()[0];
  std::string path = ctx.pos().size() > 1 ? ctx.pos()[1] : "-";
  int fd = STDIN_FILENO;
  if (path != "-") {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return ctx.Error(absl::ErrnoToStatus(errno, absl::StrCat(path)));
    }
  }
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<uint64_t> n =
      client->WriteFromFd(handle, fd, *offset, ctx.call);
  if (fd != STDIN_FILENO) ::close(fd);
  if (!n.ok()) return ctx.Error(n.status());
  return PrintResult(
      ctx,
      [&](JsonWriter& w) {
        w.BeginObject();
        w.Field("handle", handle);
        w.FieldUint("offset", *offset);
        w.FieldUint("bytes_written", *n);
        w.EndObject();
      },
      [&] {
        return absl::StrCat("wrote ", *n, " bytes (", FormatSize(*n), ") to ",
                            handle, " at offset ", *offset, "\n");
      });
}

int RunRead(Ctx& ctx) {
  absl::StatusOr<uint64_t> offset = SizeFlag(ctx, "offset", 0);
  if (!offset.ok()) return ctx.Error(offset.status());
  absl::StatusOr<uint64_t> length = SizeFlag(ctx, "length", 0);
  if (!length.ok()) return ctx.Error(length.status());
  const std::string& handle = ctx.pos()[0];
  std::string path = ctx.pos().size() > 1 ? ctx.pos()[1] : "-";
  const bool to_stdout = path == "-";
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  int fd = STDOUT_FILENO;
  if (!to_stdout) {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      return ctx.Error(absl::ErrnoToStatus(errno, absl::StrCat(path)));
    }
  }
  absl::StatusOr<uint64_t> n =
      client->ReadToFd(handle, fd, *offset, *length, ctx.call);
  if (!to_stdout) {
    struct stat st;
    const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (::close(fd) != 0 && n.ok()) {
      n = absl::ErrnoToStatus(errno, absl::StrCat("closing ", path));
    }
    // Leave no truncated or partial file behind a failed read.
    if (!n.ok() && regular) ::unlink(path.c_str());
  }
  if (!n.ok()) return ctx.Error(n.status());
  if (to_stdout) return kExitOk;  // stdout carries the data
  return PrintResult(
      ctx,
      [&](JsonWriter& w) {
        w.BeginObject();
        w.Field("handle", handle);
        w.FieldUint("offset", *offset);
        w.FieldUint("bytes_read", *n);
        w.Field("file", path);
        w.EndObject();
      },
      [&] {
        return absl::StrCat("read ", *n, " bytes (", FormatSize(*n), ") from ",
                            handle, " at offset ", *offset, " into ", path,
                            "\n");
      });
}

int RunMigrate(Ctx& ctx) {
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  const std::string& handle = ctx.pos()[0];
  const std::string& region = ctx.pos()[1];
  absl::StatusOr<gc::SubmitResult> r =
      client->Migrate(handle, region, ctx.args.Has("wait"), ctx.call);
  if (!r.ok()) return ctx.Error(r.status());
  return PrintSubmit(
      ctx, *r,
      [&](JsonWriter& w) {
        w.Field("handle", handle);
        w.Field("region", region);
      },
      absl::StrCat(handle, " -> ", region, ": "));
}

int RunPinUnpin(Ctx& ctx, bool pin) {
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  const std::string& handle = ctx.pos()[0];
  absl::StatusOr<uint32_t> count =
      pin ? client->Pin(handle, ctx.call) : client->Unpin(handle, ctx.call);
  if (!count.ok()) return ctx.Error(count.status());
  return PrintResult(
      ctx,
      [&](JsonWriter& w) {
        w.BeginObject();
        w.Field("handle", handle);
        w.FieldUint("pin_count", *count);
        w.EndObject();
      },
      [&] { return absl::StrCat(handle, ": pin count ", *count, "\n"); });
}

int RunExecFill(Ctx& ctx) {
  gc::FillOptions options;
  options.handle = ctx.pos()[0];
  std::optional<std::string> value = ctx.args.Get("value");
  if (!value.has_value()) return ctx.Usage("--value is required");
  absl::StatusOr<uint64_t> v = ParseUint(*value, 255);
  if (!v.ok()) {
    return ctx.Error(absl::InvalidArgumentError(
        absl::StrCat("--value: ", v.status().message())));
  }
  options.value = static_cast<uint32_t>(*v);
  absl::StatusOr<uint64_t> offset = SizeFlag(ctx, "offset", 0);
  if (!offset.ok()) return ctx.Error(offset.status());
  absl::StatusOr<uint64_t> length = SizeFlag(ctx, "length", 0);
  if (!length.ok()) return ctx.Error(length.status());
  options.offset = *offset;
  options.length = *length;
  options.wait = ctx.args.Has("wait");
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::SubmitResult> r = client->ExecFill(options, ctx.call);
  if (!r.ok()) return ctx.Error(r.status());
  return PrintSubmit(
      ctx, *r, [&](JsonWriter& w) { w.Field("handle", options.handle); },
      absl::StrCat("fill ", options.handle, ": "));
}

int RunExecCopy(Ctx& ctx) {
  gc::CopyOptions options;
  options.src_handle = ctx.pos()[0];
  options.dst_handle = ctx.pos()[1];
  absl::StatusOr<uint64_t> src_offset = SizeFlag(ctx, "src-offset", 0);
  if (!src_offset.ok()) return ctx.Error(src_offset.status());
  absl::StatusOr<uint64_t> dst_offset = SizeFlag(ctx, "dst-offset", 0);
  if (!dst_offset.ok()) return ctx.Error(dst_offset.status());
  absl::StatusOr<uint64_t> length = SizeFlag(ctx, "length", 0);
  if (!length.ok()) return ctx.Error(length.status());
  options.src_offset = *src_offset;
  options.dst_offset = *dst_offset;
  options.length = *length;
  options.wait = ctx.args.Has("wait");
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::SubmitResult> r = client->ExecCopy(options, ctx.call);
  if (!r.ok()) return ctx.Error(r.status());
  return PrintSubmit(
      ctx, *r,
      [&](JsonWriter& w) {
        w.Field("src_handle", options.src_handle);
        w.Field("dst_handle", options.dst_handle);
      },
      absl::StrCat("copy ", options.src_handle, " -> ", options.dst_handle,
                   ": "));
}

int RunExecChecksum(Ctx& ctx) {
  gc::ChecksumOptions options;
  options.handle = ctx.pos()[0];
  absl::StatusOr<uint64_t> offset = SizeFlag(ctx, "offset", 0);
  if (!offset.ok()) return ctx.Error(offset.status());
  absl::StatusOr<uint64_t> length = SizeFlag(ctx, "length", 0);
  if (!length.ok()) return ctx.Error(length.status());
  options.offset = *offset;
  options.length = *length;
  GPUMIGCTL_CLIENT_OR_RETURN(ctx, client);
  absl::StatusOr<gc::ChecksumResult> r =
      client->ExecChecksum(options, ctx.call);
  if (!r.ok()) return ctx.Error(r.status());
  if (ctx.json) {
    JsonWriter w;
    w.BeginObject();
    w.Field("handle", options.handle);
    w.FieldUint("offset", options.offset);
    w.FieldUint("length", options.length);
    w.Key("checksum");
    if (r->checksum.has_value()) {
      w.Uint(*r->checksum);
    } else {
      w.Null();
    }
    w.Field("checksum_hex", r->checksum.has_value()
                                ? absl::StrFormat("0x%016x", *r->checksum)
                                : "");
    w.FieldUint("fence_id", r->fence_id);
    w.Key("fence");
    JsonFence(w, r->fence);
    w.EndObject();
    ctx.PrintJson(w);
  } else if (r->checksum.has_value()) {
    ctx.Print(absl::StrFormat("0x%016x  %s\n", *r->checksum, options.handle));
  } else {
    ctx.Print(HumanFence(r->fence));
  }
  if (!r->checksum.has_value()) {
    int code = FenceExit(ctx, r->fence);
    if (code == kExitOk) {
      *ctx.err << "gpumigctl: exec checksum: no checksum (outcome "
               << gc::FenceOutcomeName(r->fence.outcome) << ")\n";
      code = kExitOperationFailed;
    }
    return code;
  }
  return kExitOk;
}

}  // namespace

std::vector<Command> ObjectCommands() {
  return {
      {"create",
       "SIZE [flags]",
       "create a buffer object",
       "SIZE is bytes, a multiple of 4096; suffixes K, M, G (binary): 4K, "
       "64MiB.\nPrints the handle and the fence of the initial clear.",
       {{"placements", "LIST",
         "regions, most preferred first (default lmem,smem)"},
        {"cpu", "", "keep every LMEM placement inside the CPU aperture"},
        {"pin", "", "create pinned (pin count 1)"},
        {"label", "L", "free text for people (at most 256 bytes)"},
        {"quiet", "", "print only the handle", 'q'}},
       1,
       1,
       RunCreate},
      {"destroy", "HANDLE", "destroy an object", "", {}, 1, 1, RunDestroy},
      {"get", "HANDLE", "describe an object", "", {}, 1, 1, RunGet},
      {"list",
       "[--all]",
       "list your objects",
       "",
       {{"all", "", "every principal's objects (admins only)"}},
       0,
       0,
       RunList},
      {"write",
       "HANDLE [FILE|-] [--offset N]",
       "write a file (or stdin) into an object",
       "Reads FILE, or stdin when FILE is - or absent, and streams it in 1 MiB "
       "chunks.",
       {{"offset", "N", "object offset of the first byte (default 0)"}},
       1,
       2,
       RunWrite},
      {"read",
       "HANDLE [FILE|-] [--offset N] [--length N]",
       "read an object into a file (or stdout)",
       "Writes to FILE, or to stdout (binary) when FILE is - or absent.",
       {{"offset", "N", "first byte to read (default 0)"},
        {"length", "N", "bytes to read (default: to the end)"}},
       1,
       2,
       RunRead},
      {"migrate",
       "HANDLE REGION [--wait]",
       "move an object to a region",
       "Prints the migration fence; with --wait, the signalled fence (exit 7 "
       "if it ended UNKNOWN_STATE, 12 if FAILED).",
       {kWaitFlag},
       2,
       2,
       RunMigrate},
      {"pin",
       "HANDLE",
       "pin an object (no eviction or migration)",
       "",
       {},
       1,
       1,
       [](Ctx& c) { return RunPinUnpin(c, true); }},
      {"unpin",
       "HANDLE",
       "unpin an object",
       "",
       {},
       1,
       1,
       [](Ctx& c) { return RunPinUnpin(c, false); }},
      {"exec fill",
       "HANDLE --value V [--offset N] [--length N] [--wait]",
       "fill bytes of an object on the copy engine",
       "",
       {{"value", "V", "byte value 0..255 (required)"},
        {"offset", "N", "first byte (default 0)"},
        {"length", "N", "bytes (default: to the end)"},
        kWaitFlag},
       1,
       1,
       RunExecFill},
      {"exec copy",
       "SRC DST [--src-offset N] [--dst-offset N] [--length N] "
       "[--wait]",
       "copy bytes between objects on the copy engine",
       "",
       {{"src-offset", "N", "first source byte (default 0)"},
        {"dst-offset", "N", "first destination byte (default 0)"},
        {"length", "N", "bytes (default: to the end of SRC)"},
        kWaitFlag},
       2,
       2,
       RunExecCopy},
      {"exec checksum",
       "HANDLE [--offset N] [--length N]",
       "FNV-1a 64 of object bytes, computed by the copy engine",
       "Prints `0x<16 hex digits>  HANDLE`.",
       {{"offset", "N", "first byte (default 0)"},
        {"length", "N", "bytes (default: to the end)"}},
       1,
       1,
       RunExecChecksum},
  };
}

}  // namespace gpumig::cli
