// The CUDA copy engine's error and ordering paths, against the fake CUDA
// runtime (testing/fake_cudart.h): CUDA calls that fail while a command is
// queued, a context lost with commands in flight, dependencies on this
// engine's own fences that have not run yet, and the rules the real runtime
// imposes (no CUDA calls from host functions, everything released).
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/device/cuda/cuda_device.h"
#include "core/device/cuda/testing/fake_cudart.h"
#include "core/fault/fault_injector.h"
#include "core/fence/fence.h"
#include "core/mem/region.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

using ::absl::StatusCode;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

absl::Status Done(const FenceRef& fence) {
  fence->Wait();
  return fence->error();
}

// Spins (yielding, no sleeps) until the fake has seen `n` calls of `api`.
void AwaitApiCalls(const char* api, uint64_t n) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (fake_cuda::ApiCalls(api) < n) {
    ASSERT_LT(absl::Now(), deadline) << "timed out waiting for " << api;
    std::this_thread::yield();
  }
}

class CudaEngineFakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_cuda::Reset();
    baseline_allocations_ = fake_cuda::LiveAllocations();
    baseline_streams_ = fake_cuda::LiveStreams();
    CudaDeviceConfig config;
    config.lmem_bytes = 4 * kMiB;
    config.smem_bytes = 4 * kMiB;
    auto device = CudaDevice::Create(config, &faults_);
    ASSERT_TRUE(device.ok()) << device.status();
    device_ = *std::move(device);
    lmem_ = *device_->FindRegion("lmem");
    smem_ = *device_->FindRegion("smem");
  }

  void TearDown() override {
    device_.reset();
    EXPECT_EQ(fake_cuda::HostFunctionApiCalls(), 0u)
        << "a host function called the CUDA API";
    EXPECT_EQ(fake_cuda::LiveAllocations(), baseline_allocations_);
    EXPECT_EQ(fake_cuda::LiveStreams(), baseline_streams_);
    fake_cuda::Reset();
  }

  SgTableRef Alloc(Region* region, uint64_t size) {
    auto t = region->Allocate(size, false);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *std::move(t) : nullptr;
  }

  std::vector<uint8_t> Read(const SgTableRef& t) {
    std::vector<uint8_t> out(t->size(), 0xEE);
    EXPECT_TRUE(
        Done(device_->engine().ReadToHost(t, 0, t->size(), out.data(), {}))
            .ok());
    return out;
  }

  // Records the order in which fences signal.
  void Track(const FenceRef& f, int i) {
    ASSERT_TRUE(f->AddCallback([this, i](const Fence&) {
                   std::lock_guard<std::mutex> lock(order_mu_);
                   order_.push_back(i);
                 }).ok());
  }
  void ExpectInOrder(int n) {
    std::lock_guard<std::mutex> lock(order_mu_);
    ASSERT_EQ(order_.size(), static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) EXPECT_EQ(order_[i], i);
  }

  FaultInjector faults_;
  std::unique_ptr<CudaDevice> device_;
  Region* lmem_ = nullptr;
  Region* smem_ = nullptr;
  uint64_t baseline_allocations_ = 0;
  uint64_t baseline_streams_ = 0;
  std::mutex order_mu_;
  std::vector<int> order_;
};

TEST_F(CudaEngineFakeTest, DescribesTheFakeDevice) {
  EXPECT_TRUE(device_->EngineStatus().ok());
  EXPECT_EQ(device_->description(),
            "cuda device 0: gpumig fake GPU (sm_90, 80.0 GiB), lmem 4 MiB "
            "device memory (no CPU aperture), smem 4 MiB pinned host memory");
}

TEST_F(CudaEngineFakeTest, QueueFailureFailsOnlyThatCommandInOrder) {
  SgTableRef s = Alloc(smem_, 64 * kKiB);
  SgTableRef l = Alloc(lmem_, 64 * kKiB);
  ASSERT_TRUE(Done(device_->engine().Fill(s, 0, 64 * kKiB, 7, {})).ok());
  FenceRef gate = Fence::Create("gate");
  std::vector<FenceRef> f;
  f.push_back(device_->engine().Fill(l, 0, 64 * kKiB, 1, {gate}));
  f.push_back(device_->engine().Copy(s, 0, l, 0, 64 * kKiB, {}));  // fails
  f.push_back(device_->engine().Fill(s, 0, 64 * kKiB, 9, {}));
  f.push_back(device_->engine().Copy(l, 0, s, 0, 64 * kKiB, {}));
  for (int i = 0; i < 4; ++i) Track(f[i], i);
  // The first copy the engine queues after the gate fails to queue.
  fake_cuda::FailNextCalls("cudaMemcpyAsync", cudaErrorInvalidValue);
  ASSERT_TRUE(gate->Signal().ok());
  EXPECT_TRUE(Done(f[0]).ok());
  absl::Status failed = Done(f[1]);
  EXPECT_EQ(failed.code(), StatusCode::kInternal);
  EXPECT_EQ(failed.message(),
            "cudaMemcpyAsync: cudaErrorInvalidValue: invalid argument");
  EXPECT_TRUE(Done(f[2]).ok());
  EXPECT_TRUE(Done(f[3]).ok());
  // The failed copy did nothing; the last copy brought LMEM's 1s back.
  EXPECT_EQ(Read(s), std::vector<uint8_t>(64 * kKiB, 1));
  // Callbacks run right after each signal: once a later command signalled,
  // every earlier callback has run.
  ExpectInOrder(4);
  // The engine goes on.
  EXPECT_TRUE(Done(device_->engine().Copy(s, 0, l, 0, 64 * kKiB, {})).ok());
}

TEST_F(CudaEngineFakeTest, HostFunctionLaunchFailureFailsThatCommand) {
  SgTableRef l = Alloc(lmem_, 8 * kKiB);
  fake_cuda::FailNextCalls("cudaLaunchHostFunc", cudaErrorInvalidValue);
  absl::Status s = Done(device_->engine().Fill(l, 0, 8 * kKiB, 3, {}));
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_TRUE(absl::StartsWith(s.message(), "cudaLaunchHostFunc: ")) << s;
  EXPECT_TRUE(Done(device_->engine().Fill(l, 0, 8 * kKiB, 4, {})).ok());
  EXPECT_EQ(Read(l), std::vector<uint8_t>(8 * kKiB, 4));
}

TEST_F(CudaEngineFakeTest, EventFailuresStillSignalInOrder) {
  SgTableRef l = Alloc(lmem_, 8 * kKiB);
  // Record failure: the host function is queued and signals; the engine
  // waits for it itself.
  fake_cuda::FailNextCalls("cudaEventRecord", cudaErrorInvalidValue);
  FenceRef gate = Fence::Create("gate");
  FenceRef a = device_->engine().Fill(l, 0, 8 * kKiB, 5, {gate});
  FenceRef b = device_->engine().Fill(l, 0, 8 * kKiB, 6, {});
  Track(a, 0);
  Track(b, 1);
  ASSERT_TRUE(gate->Signal().ok());
  EXPECT_TRUE(Done(a).ok());
  EXPECT_TRUE(Done(b).ok());
  EXPECT_EQ(Read(l), std::vector<uint8_t>(8 * kKiB, 6));
  ExpectInOrder(2);
  // A fresh device has no pooled events: creating one fails.
  l.reset();
  device_.reset();
  CudaDeviceConfig config;
  config.lmem_bytes = 1 * kMiB;
  config.smem_bytes = 1 * kMiB;
  device_ = *CudaDevice::Create(config, nullptr);
  lmem_ = *device_->FindRegion("lmem");
  SgTableRef t = Alloc(lmem_, 8 * kKiB);
  fake_cuda::FailNextCalls("cudaEventCreateWithFlags",
                           cudaErrorMemoryAllocation);
  absl::Status s = Done(device_->engine().Fill(t, 0, 8 * kKiB, 1, {}));
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_TRUE(absl::StartsWith(s.message(), "cudaEventCreateWithFlags: ")) << s;
  EXPECT_TRUE(Done(device_->engine().Fill(t, 0, 8 * kKiB, 2, {})).ok());
}

TEST_F(CudaEngineFakeTest, FailedDrainAfterAQueueFailureFailsTheEngine) {
  SgTableRef l = Alloc(lmem_, 8 * kKiB);
  fake_cuda::FailNextCalls("cudaMemsetAsync", cudaErrorLaunchFailure);
  fake_cuda::FailNextCalls("cudaStreamSynchronize", cudaErrorLaunchFailure);
  absl::Status s = Done(device_->engine().Fill(l, 0, 8 * kKiB, 1, {}));
  EXPECT_EQ(s.message(),
            "cudaMemsetAsync: cudaErrorLaunchFailure: unspecified launch "
            "failure");
  s = Done(device_->engine().Fill(l, 0, 8 * kKiB, 1, {}));
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(),
            "copy engine failed: cudaStreamSynchronize: "
            "cudaErrorLaunchFailure: unspecified launch failure");
  // Failed commands keep the first failed dependency's error.
  FenceRef dep = Fence::CreateSignaled("dep", absl::NotFoundError("dep"));
  EXPECT_EQ(Done(device_->engine().Fill(l, 0, 8, 1, {dep})).code(),
            StatusCode::kNotFound);
  // The fallback path is separate and still works.
  SgTableRef sm = Alloc(smem_, 8 * kKiB);
  EXPECT_TRUE(device_->FallbackFill(*l, 0, 8 * kKiB, 0x44).ok());
  EXPECT_TRUE(device_->FallbackCopy(*l, 0, *sm, 0, 8 * kKiB).ok());
  auto spans = device_->CpuMap(*sm, 0, 8 * kKiB);
  ASSERT_TRUE(spans.ok());
  EXPECT_EQ((*spans)[0][8 * kKiB - 1], 0x44);
}

TEST_F(CudaEngineFakeTest, LostContextFailsCommandsInFlightAndAfter) {
  SgTableRef l = Alloc(lmem_, 64 * kKiB);
  SgTableRef s = Alloc(smem_, 64 * kKiB);
  const uint64_t recorded = fake_cuda::ApiCalls("cudaEventRecord");
  fake_cuda::PauseStreams();
  std::vector<FenceRef> f;
  for (int i = 0; i < 6; ++i) {
    f.push_back(i % 2 == 0 ? device_->engine().Fill(l, 0, 64 * kKiB,
                                                    static_cast<uint8_t>(i), {})
                           : device_->engine().Copy(l, 0, s, 0, 64 * kKiB, {}));
    Track(f.back(), i);
  }
  AwaitApiCalls("cudaEventRecord", recorded + 6);
  for (const FenceRef& fence : f) EXPECT_FALSE(fence->IsSignaled());
  fake_cuda::LoseContext(cudaErrorIllegalAddress);
  fake_cuda::ResumeStreams();
  for (const FenceRef& fence : f) {
    absl::Status e = Done(fence);
    EXPECT_EQ(e.code(), StatusCode::kInternal);
    EXPECT_EQ(e.message(),
              "asynchronous CUDA error: cudaEventSynchronize: "
              "cudaErrorIllegalAddress: an illegal memory access was "
              "encountered");
  }
  EXPECT_EQ(device_->EngineStatus().code(), StatusCode::kInternal);
  // Whichever engine thread meets the lost context first records it: the
  // completion thread (cudaEventSynchronize) or the submission thread
  // (cudaSetDevice). Either way the engine is failed with CUDA's error.
  EXPECT_TRUE(absl::StartsWith(device_->EngineStatus().message(),
                               "copy engine failed: "))
      << device_->EngineStatus();
  EXPECT_TRUE(absl::StrContains(device_->EngineStatus().message(),
                                "cudaErrorIllegalAddress"))
      << device_->EngineStatus();
  absl::Status later = Done(device_->engine().Fill(l, 0, 8, 1, {}));
  EXPECT_EQ(later.code(), StatusCode::kInternal);
  EXPECT_TRUE(absl::StartsWith(later.message(), "copy engine failed: "))
      << later;
  ExpectInOrder(6);
  absl::Status fallback = device_->FallbackFill(*l, 0, 8, 1);
  EXPECT_EQ(fallback.code(), StatusCode::kInternal);
  EXPECT_TRUE(absl::StartsWith(fallback.message(), "fallback fill failed: "))
      << fallback;
  EXPECT_EQ(device_->fallback_counters().failures, 1u);
  EXPECT_EQ(device_->engine().inflight(), 0u);
  // Shutdown and destruction do not hang on the lost context (TearDown).
}

TEST_F(CudaEngineFakeTest, QueuedOwnDependencyUsesTheDecidedStatus) {
  // The dependency has been queued on the GPU but has not run: the engine
  // must still skip the dependent command with the dependency's error.
  SgTableRef l = Alloc(lmem_, 8 * kKiB);
  SgTableRef l2 = Alloc(lmem_, 8 * kKiB);
  ASSERT_TRUE(Done(device_->engine().Fill(l2, 0, 8 * kKiB, 0x42, {})).ok());
  const uint64_t recorded = fake_cuda::ApiCalls("cudaEventRecord");
  fake_cuda::PauseStreams();
  FenceRef evict = device_->engine().Fill(l, 0, 8 * kKiB, 0, {}, true);
  FenceRef ok = device_->engine().Fill(l, 0, 8 * kKiB, 1, {});
  AwaitApiCalls("cudaEventRecord", recorded + 2);
  ASSERT_FALSE(evict->IsSignaled());
  FenceRef clear = device_->engine().Fill(l2, 0, 8 * kKiB, 0, {ok, evict});
  AwaitApiCalls("cudaEventRecord", recorded + 3);
  fake_cuda::ResumeStreams();
  EXPECT_EQ(Done(evict).message(), "injected blit failure");
  EXPECT_TRUE(Done(ok).ok());
  absl::Status s = Done(clear);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "injected blit failure");
  EXPECT_EQ(Read(l2), std::vector<uint8_t>(8 * kKiB, 0x42));
}

TEST_F(CudaEngineFakeTest, CommandsInFlightHoldTheirTablesUntilSignalled) {
  SgTableRef l = Alloc(lmem_, 64 * kKiB);
  const uint64_t allocated = lmem_->Usage().allocated_bytes;
  fake_cuda::PauseStreams();
  FenceRef f = device_->engine().Fill(l, 0, 64 * kKiB, 1, {});
  l.reset();
  EXPECT_EQ(lmem_->Usage().allocated_bytes, allocated);
  fake_cuda::ResumeStreams();
  ASSERT_TRUE(Done(f).ok());
  EXPECT_EQ(lmem_->Usage().allocated_bytes, 0u);
}

TEST_F(CudaEngineFakeTest, ShutdownWhileTheGpuIsHeldDrainsEverything) {
  SgTableRef l = Alloc(lmem_, 64 * kKiB);
  fake_cuda::PauseStreams();
  std::vector<FenceRef> f;
  for (int i = 0; i < 8; ++i) {
    f.push_back(device_->engine().Fill(l, 0, 64 * kKiB, 1, {}));
  }
  std::thread release([] { fake_cuda::ResumeStreams(); });
  device_->Shutdown();
  release.join();
  for (const FenceRef& fence : f) {
    EXPECT_TRUE(fence->IsSignaled());
    EXPECT_TRUE(fence->error().ok()) << fence->error();
  }
  EXPECT_EQ(Done(device_->engine().Fill(l, 0, 8, 1, {})).code(),
            StatusCode::kAborted);
}

TEST_F(CudaEngineFakeTest, CreateReportsCudaFailuresClearly) {
  fake_cuda::SetDeviceCount(0);
  CudaDeviceConfig config;
  config.lmem_bytes = 1 * kMiB;
  config.smem_bytes = 1 * kMiB;
  absl::Status s = CudaDevice::Create(config, nullptr).status();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.message(),
            "no CUDA-capable GPU: cudaGetDeviceCount: no CUDA-capable device "
            "is detected");
  fake_cuda::SetDeviceCount(1);
  fake_cuda::FailNextCalls("cudaMalloc", cudaErrorMemoryAllocation);
  s = CudaDevice::Create(config, nullptr).status();
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "cudaMalloc(lmem, 1 MiB): out of memory");
  fake_cuda::FailNextCalls("cudaHostAlloc", cudaErrorMemoryAllocation);
  s = CudaDevice::Create(config, nullptr).status();
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  fake_cuda::FailNextCalls("cudaStreamCreateWithPriority",
                           cudaErrorInvalidValue, 2);
  s = CudaDevice::Create(config, nullptr).status();
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  // Nothing leaked on any of those paths (checked in TearDown too).
}

}  // namespace
}  // namespace gpumig
