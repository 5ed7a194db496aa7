// The fake CUDA runtime: see fake_cudart.h.
//
// One global mutex and one condition variable guard everything (streams,
// events, allocations, fault state); every state change notifies all
// waiters. Simple beats fast here.
#include "core/device/cuda/testing/fake_cudart.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

struct CUstream_st {
  std::deque<std::function<void()>> ops;
  uint64_t enqueued = 0;
  uint64_t completed = 0;
  bool stopping = false;
  std::thread worker;
};

struct CUevent_st {
  uint64_t recorded = 0;   // generation of the last cudaEventRecord
  uint64_t completed = 0;  // highest generation that has executed
};

namespace gpumig {
namespace fake_cuda {
namespace {

// kRegistered: host memory page-locked by cudaHostRegister (pinned for
// copies; not freed by cudaFreeHost).
enum class Where { kDevice, kPinned, kManaged, kPageable, kRegistered };

struct HostJob {
  cudaHostFn_t fn = nullptr;
  void* data = nullptr;
  bool done = false;
};

struct Global {
  std::mutex mu;
  std::condition_variable cv;
  int device_count = 1;
  cudaError_t lost = cudaSuccess;
  bool paused = false;
  std::map<std::string, std::pair<cudaError_t, int>> fail_next;
  std::map<std::string, uint64_t> calls;
  uint64_t host_function_api_calls = 0;
  // start -> (size, where)
  std::map<uintptr_t, std::pair<size_t, Where>> allocations;
  std::set<cudaStream_t> streams;
  // cudaHostRegister'd ranges (start, also in `allocations`) -> copies
  // queued through them and not yet executed.
  std::map<uintptr_t, int> registered_pending;
  uint64_t registered_copy_bytes = 0;
  uint64_t unregisters_with_copies_pending = 0;
  bool refuse_pageable_host_copies = false;
  // Every event ever created: destroyed ones are kept (queued waits may still
  // name them), reachable so leak checkers stay quiet.
  std::set<cudaEvent_t> events;
  // The callback thread's queue.
  std::deque<HostJob*> host_jobs;
  bool callback_thread_started = false;
};

Global& G() {
  static Global* g = new Global();
  return *g;
}

thread_local bool in_host_function = false;
thread_local cudaError_t last_error = cudaSuccess;
thread_local int current_device = 0;

// Checks an API entry: counts it, refuses calls from host functions, applies
// a lost context and FailNextCalls. Returns the error to return, if any.
// `allow_lost`: the call still works on a lost context (destroying things).
cudaError_t Enter(const char* api, bool allow_lost = false) {
  Global& g = G();
  std::lock_guard<std::mutex> lock(g.mu);
  ++g.calls[api];
  cudaError_t e = cudaSuccess;
  if (in_host_function) {
    ++g.host_function_api_calls;
    e = cudaErrorNotPermitted;
  } else if (g.lost != cudaSuccess && !allow_lost) {
    e = g.lost;
  } else {
    auto it = g.fail_next.find(api);
    if (it != g.fail_next.end() && it->second.second > 0) {
      e = it->second.first;
      if (--it->second.second == 0) g.fail_next.erase(it);
    }
  }
  if (e != cudaSuccess) last_error = e;
  return e;
}

cudaError_t Fail(cudaError_t e) {
  last_error = e;
  return e;
}

// Where [p, p + n) lives; kPageable if in no allocation. *in_bounds is false
// if it starts inside an allocation and runs past its end.
Where Classify(const void* p, size_t n, bool* in_bounds)
/* requires G().mu */ {
  *in_bounds = true;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto& allocations = G().allocations;
  auto it = allocations.upper_bound(a);
  if (it == allocations.begin()) return Where::kPageable;
  --it;
  if (a >= it->first + it->second.first) return Where::kPageable;
  *in_bounds = a + n <= it->first + it->second.first;
  return it->second.second;
}

void CallbackThread() {
  Global& g = G();
  std::unique_lock<std::mutex> lock(g.mu);
  for (;;) {
    g.cv.wait(lock, [&] { return !g.host_jobs.empty(); });
    HostJob* job = g.host_jobs.front();
    g.host_jobs.pop_front();
    lock.unlock();
    in_host_function = true;
    job->fn(job->data);
    in_host_function = false;
    lock.lock();
    job->done = true;
    g.cv.notify_all();
  }
}

// Runs fn(data) on the callback thread and waits for it (a stream does not
// move past a host function until it returns).
void RunHostFunction(cudaHostFn_t fn, void* data) {
  Global& g = G();
  HostJob job;
  job.fn = fn;
  job.data = data;
  std::unique_lock<std::mutex> lock(g.mu);
  if (!g.callback_thread_started) {
    g.callback_thread_started = true;
    std::thread(CallbackThread).detach();
  }
  g.host_jobs.push_back(&job);
  g.cv.notify_all();
  g.cv.wait(lock, [&] { return job.done; });
}

void StreamWorker(cudaStream_t s) {
  Global& g = G();
  std::unique_lock<std::mutex> lock(g.mu);
  for (;;) {
    g.cv.wait(lock, [&] {
      if (s->ops.empty()) return s->stopping;
      return !g.paused || g.lost != cudaSuccess;
    });
    if (s->ops.empty()) return;
    std::function<void()> op = std::move(s->ops.front());
    s->ops.pop_front();
    const bool drop = g.lost != cudaSuccess;
    lock.unlock();
    if (!drop) op();
    op = nullptr;
    lock.lock();
    ++s->completed;
    g.cv.notify_all();
  }
}

// Queues `op` on `s`; returns its ticket (the `completed` count at which it
// has run).
uint64_t Enqueue(cudaStream_t s, std::function<void()> op)
/* requires G().mu */ {
  s->ops.push_back(std::move(op));
  G().cv.notify_all();
  return ++s->enqueued;
}

// Waits until `s` has run `ticket` ops or the context is lost.
cudaError_t WaitTicket(std::unique_lock<std::mutex>& lock, cudaStream_t s,
                       uint64_t ticket) {
  Global& g = G();
  g.cv.wait(lock,
            [&] { return s->completed >= ticket || g.lost != cudaSuccess; });
  return g.lost;
}

// The start of the cudaHostRegister'd range holding `p`; 0 if none.
uintptr_t RegisteredStart(const void* p) /* requires G().mu */ {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto& allocations = G().allocations;
  auto it = allocations.upper_bound(a);
  if (it == allocations.begin()) return 0;
  --it;
  if (it->second.second != Where::kRegistered ||
      a >= it->first + it->second.first) {
    return 0;
  }
  return it->first;
}

// Whether [a, a + n) overlaps any tracked allocation or registration.
bool OverlapsTracked(uintptr_t a, size_t n) /* requires G().mu */ {
  auto& allocations = G().allocations;
  auto it = allocations.lower_bound(a);
  if (it != allocations.end() && it->first < a + n) return true;
  if (it == allocations.begin()) return false;
  --it;
  return a < it->first + it->second.first;
}

bool KnownStream(cudaStream_t s) /* requires G().mu */ {
  return s != nullptr && G().streams.count(s) > 0;
}

cudaError_t AddAllocation(void* p, size_t n, Where where) {
  if (p == nullptr) return Fail(cudaErrorMemoryAllocation);
  std::lock_guard<std::mutex> lock(G().mu);
  G().allocations[reinterpret_cast<uintptr_t>(p)] = {n, where};
  return cudaSuccess;
}

cudaError_t Allocate(void** out, size_t n, Where where) {
  if (out == nullptr) return Fail(cudaErrorInvalidValue);
  // Limit what a test can ask for; bigger is "out of memory".
  if (n > (64ull << 30)) return Fail(cudaErrorMemoryAllocation);
  void* p = std::malloc(std::max<size_t>(n, 1));
  // Fresh memory is garbage, as on a GPU: nobody may rely on zeros.
  if (p != nullptr) std::memset(p, 0xDB, n);
  const cudaError_t e = AddAllocation(p, n, where);
  if (e == cudaSuccess) *out = p;
  return e;
}

cudaError_t Release(void* p, Where expected) {
  if (p == nullptr) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(G().mu);
    auto it = G().allocations.find(reinterpret_cast<uintptr_t>(p));
    if (it == G().allocations.end()) return Fail(cudaErrorInvalidValue);
    const Where w = it->second.second;
    const bool ok = expected == Where::kPinned
                        ? w == Where::kPinned
                        : (w == Where::kDevice || w == Where::kManaged);
    if (!ok) return Fail(cudaErrorInvalidValue);
    G().allocations.erase(it);
  }
  std::free(p);
  return cudaSuccess;
}

const char* ErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidDevice:
      return "cudaErrorInvalidDevice";
    case cudaErrorNoDevice:
      return "cudaErrorNoDevice";
    case cudaErrorNotPermitted:
      return "cudaErrorNotPermitted";
    case cudaErrorIllegalAddress:
      return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure:
      return "cudaErrorLaunchFailure";
    case cudaErrorInvalidResourceHandle:
      return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady:
      return "cudaErrorNotReady";
    default:
      return "cudaErrorUnknown";
  }
}

const char* ErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidDevice:
      return "invalid device ordinal";
    case cudaErrorNoDevice:
      return "no CUDA-capable device is detected";
    case cudaErrorNotPermitted:
      return "operation not permitted";
    case cudaErrorIllegalAddress:
      return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure";
    case cudaErrorInvalidResourceHandle:
      return "invalid resource handle";
    case cudaErrorNotReady:
      return "device not ready";
    default:
      return "unknown error";
  }
}

}  // namespace

void Reset() {
  Global& g = G();
  std::lock_guard<std::mutex> lock(g.mu);
  g.device_count = 1;
  g.lost = cudaSuccess;
  g.paused = false;
  g.fail_next.clear();
  g.calls.clear();
  g.host_function_api_calls = 0;
  g.registered_copy_bytes = 0;
  g.unregisters_with_copies_pending = 0;
  g.refuse_pageable_host_copies = false;
  g.cv.notify_all();
}

void RefusePageableHostCopies(bool refuse) {
  std::lock_guard<std::mutex> lock(G().mu);
  G().refuse_pageable_host_copies = refuse;
}

uint64_t LiveHostRegistrations() {
  std::lock_guard<std::mutex> lock(G().mu);
  return G().registered_pending.size();
}

uint64_t RegisteredCopyBytes() {
  std::lock_guard<std::mutex> lock(G().mu);
  return G().registered_copy_bytes;
}

uint64_t UnregistersWithCopiesPending() {
  std::lock_guard<std::mutex> lock(G().mu);
  return G().unregisters_with_copies_pending;
}

void SetDeviceCount(int n) {
  std::lock_guard<std::mutex> lock(G().mu);
  G().device_count = n;
}

void FailNextCalls(const std::string& api, cudaError_t error, int n) {
  std::lock_guard<std::mutex> lock(G().mu);
  G().fail_next[api] = {error, n};
}

void LoseContext(cudaError_t error) {
  std::lock_guard<std::mutex> lock(G().mu);
  G().lost = error;
  G().cv.notify_all();
}

void PauseStreams() {
  std::lock_guard<std::mutex> lock(G().mu);
  G().paused = true;
}

void ResumeStreams() {
  std::lock_guard<std::mutex> lock(G().mu);
  G().paused = false;
  G().cv.notify_all();
}

uint64_t ApiCalls(const std::string& api) {
  std::lock_guard<std::mutex> lock(G().mu);
  auto it = G().calls.find(api);
  return it == G().calls.end() ? 0 : it->second;
}

uint64_t HostFunctionApiCalls() {
  std::lock_guard<std::mutex> lock(G().mu);
  return G().host_function_api_calls;
}

uint64_t LiveAllocations() {
  std::lock_guard<std::mutex> lock(G().mu);
  return G().allocations.size();
}

uint64_t LiveStreams() {
  std::lock_guard<std::mutex> lock(G().mu);
  return G().streams.size();
}

}  // namespace fake_cuda
}  // namespace gpumig

using gpumig::fake_cuda::G;
using gpumig::fake_cuda::Where;
namespace fc = gpumig::fake_cuda;

extern "C" {

const char* cudaGetErrorName(cudaError_t error) { return fc::ErrorName(error); }
const char* cudaGetErrorString(cudaError_t error) {
  return fc::ErrorString(error);
}

cudaError_t cudaGetLastError(void) {
  {
    std::lock_guard<std::mutex> lock(G().mu);
    if (G().lost != cudaSuccess) return G().lost;
  }
  const cudaError_t e = fc::last_error;
  fc::last_error = cudaSuccess;
  return e;
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* version) {
  *version = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* count) {
  if (cudaError_t e = fc::Enter("cudaGetDeviceCount")) return e;
  std::lock_guard<std::mutex> lock(G().mu);
  *count = G().device_count;
  if (G().device_count == 0) return fc::Fail(cudaErrorNoDevice);
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (cudaError_t e = fc::Enter("cudaGetDevice")) return e;
  *device = fc::current_device;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (cudaError_t e = fc::Enter("cudaSetDevice")) return e;
  std::lock_guard<std::mutex> lock(G().mu);
  if (device < 0 || device >= G().device_count) {
    return fc::Fail(cudaErrorInvalidDevice);
  }
  fc::current_device = device;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, enum cudaDeviceAttr attr,
                                   int device) {
  if (cudaError_t e = fc::Enter("cudaDeviceGetAttribute")) return e;
  std::lock_guard<std::mutex> lock(G().mu);
  if (device < 0 || device >= G().device_count) {
    return fc::Fail(cudaErrorInvalidDevice);
  }
  switch (attr) {
    case cudaDevAttrUnifiedAddressing:
    case cudaDevAttrCanMapHostMemory:
    case cudaDevAttrConcurrentManagedAccess:
    case cudaDevAttrManagedMemory:
      *value = 1;
      break;
    default:
      *value = 0;
  }
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp* prop, int device) {
  if (cudaError_t e = fc::Enter("cudaGetDeviceProperties")) return e;
  std::lock_guard<std::mutex> lock(G().mu);
  if (device < 0 || device >= G().device_count) {
    return fc::Fail(cudaErrorInvalidDevice);
  }
  std::memset(prop, 0, sizeof(*prop));
  std::strncpy(prop->name, "gpumig fake GPU", sizeof(prop->name) - 1);
  prop->major = 9;
  prop->minor = 0;
  prop->totalGlobalMem = 80ull << 30;
  prop->unifiedAddressing = 1;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetStreamPriorityRange(int* least, int* greatest) {
  if (cudaError_t e = fc::Enter("cudaDeviceGetStreamPriorityRange")) return e;
  *least = 0;
  *greatest = -5;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t size) {
  if (cudaError_t e = fc::Enter("cudaMalloc")) return e;
  return fc::Allocate(ptr, size, Where::kDevice);
}

cudaError_t cudaMallocManaged(void** ptr, size_t size, unsigned int flags) {
  (void)flags;
  if (cudaError_t e = fc::Enter("cudaMallocManaged")) return e;
  return fc::Allocate(ptr, size, Where::kManaged);
}

cudaError_t cudaFree(void* ptr) {
  if (cudaError_t e = fc::Enter("cudaFree", true)) return e;
  return fc::Release(ptr, Where::kDevice);
}

cudaError_t cudaHostAlloc(void** ptr, size_t size, unsigned int flags) {
  (void)flags;
  if (cudaError_t e = fc::Enter("cudaHostAlloc")) return e;
  return fc::Allocate(ptr, size, Where::kPinned);
}

cudaError_t cudaMallocHost(void** ptr, size_t size) {
  if (cudaError_t e = fc::Enter("cudaMallocHost")) return e;
  return fc::Allocate(ptr, size, Where::kPinned);
}

cudaError_t cudaFreeHost(void* ptr) {
  if (cudaError_t e = fc::Enter("cudaFreeHost", true)) return e;
  return fc::Release(ptr, Where::kPinned);
}

cudaError_t cudaHostRegister(void* ptr, size_t size, unsigned int flags) {
  if (cudaError_t e = fc::Enter("cudaHostRegister")) return e;
  constexpr unsigned int kKnown =
      cudaHostRegisterPortable | cudaHostRegisterMapped |
      cudaHostRegisterIoMemory | cudaHostRegisterReadOnly;
  if (ptr == nullptr || size == 0 || (flags & ~kKnown) != 0) {
    return fc::Fail(cudaErrorInvalidValue);
  }
  std::lock_guard<std::mutex> lock(G().mu);
  const uintptr_t a = reinterpret_cast<uintptr_t>(ptr);
  if (fc::OverlapsTracked(a, size)) {
    return fc::Fail(cudaErrorHostMemoryAlreadyRegistered);
  }
  G().allocations[a] = {size, Where::kRegistered};
  G().registered_pending[a] = 0;
  return cudaSuccess;
}

cudaError_t cudaHostUnregister(void* ptr) {
  if (cudaError_t e = fc::Enter("cudaHostUnregister", /*allow_lost=*/true)) {
    return e;
  }
  std::lock_guard<std::mutex> lock(G().mu);
  const uintptr_t a = reinterpret_cast<uintptr_t>(ptr);
  auto it = G().registered_pending.find(a);
  if (it == G().registered_pending.end()) {
    return fc::Fail(cudaErrorHostMemoryNotRegistered);
  }
  if (it->second != 0) ++G().unregisters_with_copies_pending;
  G().registered_pending.erase(it);
  G().allocations.erase(a);
  return cudaSuccess;
}

cudaError_t cudaHostGetDevicePointer(void** device, void* host,
                                     unsigned int flags) {
  if (cudaError_t e = fc::Enter("cudaHostGetDevicePointer")) return e;
  if (flags != 0) return fc::Fail(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(G().mu);
  bool in_bounds = false;
  if (fc::Classify(host, 1, &in_bounds) != Where::kPinned) {
    return fc::Fail(cudaErrorInvalidValue);
  }
  *device = host;  // unified addressing
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithPriority(cudaStream_t* stream,
                                         unsigned int flags, int priority) {
  (void)flags, (void)priority;
  if (cudaError_t e = fc::Enter("cudaStreamCreateWithPriority")) return e;
  cudaStream_t s = new CUstream_st();
  {
    std::lock_guard<std::mutex> lock(G().mu);
    G().streams.insert(s);
  }
  s->worker = std::thread(fc::StreamWorker, s);
  *stream = s;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return cudaStreamCreateWithPriority(stream, 0, 0);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream,
                                      unsigned int flags) {
  return cudaStreamCreateWithPriority(stream, flags, 0);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (cudaError_t e = fc::Enter("cudaStreamDestroy", true)) return e;
  {
    std::lock_guard<std::mutex> lock(G().mu);
    if (!fc::KnownStream(stream))
      return fc::Fail(cudaErrorInvalidResourceHandle);
    G().streams.erase(stream);
    stream->stopping = true;
    G().cv.notify_all();
  }
  stream->worker.join();
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (cudaError_t e = fc::Enter("cudaStreamSynchronize")) return e;
  std::unique_lock<std::mutex> lock(G().mu);
  if (!fc::KnownStream(stream)) return fc::Fail(cudaErrorInvalidResourceHandle);
  const cudaError_t e = fc::WaitTicket(lock, stream, stream->enqueued);
  if (e != cudaSuccess) fc::last_error = e;
  return e;
}

cudaError_t cudaDeviceSynchronize(void) {
  if (cudaError_t e = fc::Enter("cudaDeviceSynchronize")) return e;
  std::unique_lock<std::mutex> lock(G().mu);
  for (cudaStream_t s :
       std::vector<cudaStream_t>(G().streams.begin(), G().streams.end())) {
    if (cudaError_t e = fc::WaitTicket(lock, s, s->enqueued)) return e;
  }
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  (void)flags;
  if (cudaError_t e = fc::Enter("cudaEventCreateWithFlags")) return e;
  std::lock_guard<std::mutex> lock(G().mu);
  *event = new CUevent_st();
  G().events.insert(*event);
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (cudaError_t e = fc::Enter("cudaEventDestroy", true)) return e;
  // Real CUDA defers the release until pending work naming the event is
  // done; the fake keeps every event (G().events).
  std::lock_guard<std::mutex> lock(G().mu);
  if (G().events.count(event) == 0) return fc::Fail(cudaErrorInvalidValue);
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (cudaError_t e = fc::Enter("cudaEventRecord")) return e;
  std::lock_guard<std::mutex> lock(G().mu);
  if (!fc::KnownStream(stream)) return fc::Fail(cudaErrorInvalidResourceHandle);
  const uint64_t generation = ++event->recorded;
  fc::Enqueue(stream, [event, generation] {
    std::lock_guard<std::mutex> l(G().mu);
    event->completed = std::max(event->completed, generation);
    G().cv.notify_all();
  });
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (cudaError_t e = fc::Enter("cudaEventSynchronize")) return e;
  std::unique_lock<std::mutex> lock(G().mu);
  const uint64_t target = event->recorded;
  G().cv.wait(lock, [&] {
    return event->completed >= target || G().lost != cudaSuccess;
  });
  if (G().lost != cudaSuccess) return fc::Fail(G().lost);
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event,
                                unsigned int flags) {
  if (cudaError_t e = fc::Enter("cudaStreamWaitEvent")) return e;
  if (flags != 0) return fc::Fail(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(G().mu);
  if (!fc::KnownStream(stream)) return fc::Fail(cudaErrorInvalidResourceHandle);
  const uint64_t target = event->recorded;
  if (target == 0) return cudaSuccess;  // never recorded: no-op
  fc::Enqueue(stream, [event, target] {
    std::unique_lock<std::mutex> l(G().mu);
    G().cv.wait(l, [&] {
      return event->completed >= target || G().lost != cudaSuccess;
    });
  });
  return cudaSuccess;
}

cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn,
                               void* user_data) {
  if (cudaError_t e = fc::Enter("cudaLaunchHostFunc")) return e;
  if (fn == nullptr) return fc::Fail(cudaErrorInvalidValue);
  std::lock_guard<std::mutex> lock(G().mu);
  if (!fc::KnownStream(stream)) return fc::Fail(cudaErrorInvalidResourceHandle);
  fc::Enqueue(stream, [fn, user_data] { fc::RunHostFunction(fn, user_data); });
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count,
                            enum cudaMemcpyKind kind, cudaStream_t stream) {
  if (cudaError_t e = fc::Enter("cudaMemcpyAsync")) return e;
  std::unique_lock<std::mutex> lock(G().mu);
  if (!fc::KnownStream(stream)) return fc::Fail(cudaErrorInvalidResourceHandle);
  if (count == 0) return cudaSuccess;
  bool dst_ok = false, src_ok = false;
  const Where d = fc::Classify(dst, count, &dst_ok);
  const Where s = fc::Classify(src, count, &src_ok);
  if (!dst_ok || !src_ok) return fc::Fail(cudaErrorInvalidValue);
  const bool d_dev = d == Where::kDevice;
  const bool s_dev = s == Where::kDevice;
  bool kind_ok = false;
  switch (kind) {
    case cudaMemcpyHostToDevice:
      kind_ok = d_dev && !s_dev;
      break;
    case cudaMemcpyDeviceToHost:
      kind_ok = !d_dev && s_dev;
      break;
    case cudaMemcpyDeviceToDevice:
      kind_ok = d_dev && s_dev;
      break;
    case cudaMemcpyHostToHost:
      kind_ok = !d_dev && !s_dev;
      break;
    case cudaMemcpyDefault:
      kind_ok = true;
      break;
  }
  if (!kind_ok) return fc::Fail(cudaErrorInvalidValue);
  if (G().refuse_pageable_host_copies &&
      ((d_dev && s == Where::kPageable) || (s_dev && d == Where::kPageable))) {
    return fc::Fail(cudaErrorInvalidValue);
  }
  if (!s_dev && s == Where::kPageable && d_dev) {
    // Pageable source: sync the stream, stage the bytes now.
    if (cudaError_t e = fc::WaitTicket(lock, stream, stream->enqueued)) {
      return fc::Fail(e);
    }
    auto staged = std::make_shared<std::vector<uint8_t>>(
        static_cast<const uint8_t*>(src),
        static_cast<const uint8_t*>(src) + count);
    fc::Enqueue(stream, [dst, staged] {
      std::memcpy(dst, staged->data(), staged->size());
    });
    return cudaSuccess;
  }
  // Copies through registered memory count as pending on it until they ran
  // (a copy dropped by a lost context stays pending: no test mixes them).
  std::vector<uintptr_t> regs;
  for (const void* p : {static_cast<const void*>(dst), src}) {
    if (uintptr_t r = fc::RegisteredStart(p); r != 0) {
      regs.push_back(r);
      ++G().registered_pending[r];
    }
  }
  if (!regs.empty()) G().registered_copy_bytes += count;
  const uint64_t ticket = fc::Enqueue(stream, [dst, src, count, regs] {
    std::memmove(dst, src, count);
    if (regs.empty()) return;
    std::lock_guard<std::mutex> l(G().mu);
    for (uintptr_t r : regs) {
      auto it = G().registered_pending.find(r);
      if (it != G().registered_pending.end()) --it->second;
    }
  });
  if (d == Where::kPageable && s_dev) {
    // Device to pageable: returns once the copy has completed.
    if (cudaError_t e = fc::WaitTicket(lock, stream, ticket)) {
      return fc::Fail(e);
    }
  }
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count,
                            cudaStream_t stream) {
  if (cudaError_t e = fc::Enter("cudaMemsetAsync")) return e;
  std::lock_guard<std::mutex> lock(G().mu);
  if (!fc::KnownStream(stream)) return fc::Fail(cudaErrorInvalidResourceHandle);
  if (count == 0) return cudaSuccess;
  bool ok = false;
  const Where w = fc::Classify(ptr, count, &ok);
  if (!ok || w == Where::kPageable) return fc::Fail(cudaErrorInvalidValue);
  fc::Enqueue(stream, [ptr, value, count] { std::memset(ptr, value, count); });
  return cudaSuccess;
}

#if CUDART_VERSION >= 13000
cudaError_t cudaMemPrefetchAsync(const void* ptr, size_t count,
                                 struct cudaMemLocation location,
                                 unsigned int flags, cudaStream_t stream) {
  (void)location, (void)flags;
  if (cudaError_t e = fc::Enter("cudaMemPrefetchAsync")) return e;
  std::lock_guard<std::mutex> lock(G().mu);
  if (!fc::KnownStream(stream)) return fc::Fail(cudaErrorInvalidResourceHandle);
  bool ok = false;
  if (fc::Classify(ptr, count, &ok) != Where::kManaged || !ok) {
    return fc::Fail(cudaErrorInvalidValue);
  }
  fc::Enqueue(stream, [] {});
  return cudaSuccess;
}
#endif  // CUDART_VERSION >= 13000

}  // extern "C"
