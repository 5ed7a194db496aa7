#include "daemon/services/fence_service.h"

#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "daemon/services/convert.h"
#include "daemon/services/handles.h"

namespace gpumig {
namespace daemon {
namespace {

constexpr char kService[] = "/gpumig.v1.FenceService/";
// How often an idle Watch stream checks for cancellation, shutdown and the
// destruction of its object.
constexpr absl::Duration kWatchTick = absl::Milliseconds(100);

std::string M(absl::string_view name) { return absl::StrCat(kService, name); }

// The per-stream queue between the signalling thread (Push) and the stream
// (Drain). Thread-safe; Push never blocks beyond a short critical section.
class WatchQueue {
 public:
  explicit WatchQueue(size_t capacity) : capacity_(capacity) {}

  void Push(v1::Event event) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (events_.size() >= capacity_) {
      ++dropped_;
      return;
    }
    events_.push_back(std::move(event));
  }

  // Waits up to `timeout` for events; moves them (and the drop count) out.
  void Drain(absl::Duration timeout, std::deque<v1::Event>* out,
             uint64_t* dropped) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !events_.empty() || dropped_ != 0;
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    out->swap(events_);
    *dropped = dropped_;
    dropped_ = 0;
  }

 private:
  const size_t capacity_;
  absl::Mutex mu_;
  std::deque<v1::Event> events_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

grpc::Status FenceService::Get(grpc::ServerContext* ctx,
                               const v1::GetFenceRequest* req,
                               v1::FenceStatus* resp) {
  return env_->Run(M("Get"), ctx, [&](const Principal& who) -> absl::Status {
    if (req->fence_id() == 0) return FieldError("fence_id", "must be non-zero");
    absl::StatusOr<FenceInfo> info =
        env_->manager().GetFence(who, req->fence_id());
    if (!info.ok()) return info.status();
    FenceToProto(*info, resp);
    return absl::OkStatus();
  });
}

grpc::Status FenceService::Wait(grpc::ServerContext* ctx,
                                const v1::WaitFenceRequest* req,
                                v1::FenceStatus* resp) {
  return env_->Run(M("Wait"), ctx, [&](const Principal& who) -> absl::Status {
    if (req->fence_id() == 0) return FieldError("fence_id", "must be non-zero");
    absl::Time cap = absl::InfiniteFuture();
    if (req->timeout_ms() != 0) {
      cap = absl::Now() + absl::Milliseconds(req->timeout_ms());
    }
    absl::StatusOr<FenceInfo> info = env_->WaitForFence(
        who, req->fence_id(), RpcEnv::Deadline(*ctx, cap), ctx);
    if (!info.ok()) return info.status();
    FenceToProto(*info, resp);
    return absl::OkStatus();
  });
}

grpc::Status FenceService::Watch(grpc::ServerContext* ctx,
                                 const v1::WatchRequest* req,
                                 grpc::ServerWriter<v1::Event>* writer) {
  return env_->Run(M("Watch"), ctx, [&](const Principal& who) -> absl::Status {
    uint64_t object_id = 0;
    if (!req->handle().empty()) {
      absl::StatusOr<uint64_t> id = ParseHandle("handle", req->handle());
      if (!id.ok()) return id.status();
      absl::StatusOr<ObjectInfo> info = env_->manager().GetObject(who, *id);
      if (!info.ok()) return info.status();
      object_id = *id;
    } else if (req->all_principals() && !who.admin) {
      return PermissionDenied();
    }
    absl::flat_hash_set<int> kinds;
    for (int i = 0; i < req->kinds_size(); ++i) {
      const int k = req->kinds(i);
      if (k == v1::EVENT_KIND_UNSPECIFIED || !v1::EventKind_IsValid(k)) {
        return FieldError(absl::StrCat("kinds[", i, "]"),
                          "not an EventKind value");
      }
      kinds.insert(k);
    }
    if (!env_->TryAddWatcher()) {
      return absl::ResourceExhaustedError(
          absl::StrCat("too many watchers (", env_->options().max_watchers,
                       "); try again later"));
    }
    absl::Cleanup release = [this] { env_->RemoveWatcher(); };

    const bool all = object_id == 0 && req->all_principals() && who.admin;
    const std::string owner = who.name;
    auto queue =
        std::make_shared<WatchQueue>(env_->options().watch_queue_events);
    // Runs on the signalling thread: filter, convert, enqueue; never blocks.
    FenceRegistry& fences = env_->manager().fences();
    const uint64_t sub = fences.Subscribe(
        [queue, object_id, all, owner, kinds](const FenceInfo& info) {
          if (object_id != 0 ? info.object_id != object_id
                             : (!all && info.owner != owner)) {
            return;
          }
          const v1::EventKind kind = EventKindOf(info);
          if (!kinds.empty() && !kinds.contains(kind)) return;
          v1::Event event;
          event.set_kind(kind);
          FenceToProto(info, event.mutable_fence());
          if (info.object_id != 0)
            event.set_handle(FormatHandle(info.object_id));
          event.set_region(info.dst_region);
          event.set_time_unix_nanos(UnixNanos(info.signaled_at));
          queue->Push(std::move(event));
        });
    absl::Cleanup unsubscribe = [&fences, sub] { fences.Unsubscribe(sub); };

    // Headers go out now, so the client knows the stream is set up.
    writer->SendInitialMetadata();
    uint64_t seqno = 0;
    std::deque<v1::Event> batch;
    for (;;) {
      uint64_t dropped = 0;
      queue->Drain(kWatchTick, &batch, &dropped);
      for (v1::Event& e : batch) {
        e.set_event_seqno(++seqno);
        if (!writer->Write(e)) {
          return absl::CancelledError("the client went away");
        }
      }
      batch.clear();
      if (dropped != 0) {
        v1::Event e;
        e.set_event_seqno(++seqno);
        e.set_kind(v1::EVENT_KIND_DROPPED);
        e.set_dropped_events(dropped);
        e.set_time_unix_nanos(UnixNanos(absl::Now()));
        if (!writer->Write(e)) {
          return absl::CancelledError("the client went away");
        }
      }
      if (ctx->IsCancelled()) {
        return absl::CancelledError("the client cancelled the stream");
      }
      if (env_->draining()) {
        return absl::UnavailableError("gpumigd is shutting down");
      }
      if (object_id != 0) {
        absl::StatusOr<ObjectInfo> still =
            env_->manager().GetObject(who, object_id);
        if (absl::IsNotFound(still.status())) return absl::OkStatus();
      }
    }
  });
}

}  // namespace daemon
}  // namespace gpumig
