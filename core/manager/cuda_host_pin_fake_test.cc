// Shared buffers on the cuda backend, against the fake CUDA runtime (no GPU
// needed): the registry's pin hooks (cuda_host_pin.h) page-lock each buffer
// once at registration, copies through MemoryManager DMA straight between
// the registered mapping and device memory (the fake refuses pageable host
// copies here, so any staging through unregistered memory would fail), and
// the buffer is unregistered from CUDA only after its copies drained, before
// munmap.
#include <sys/mman.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "core/device/cuda/cuda_device.h"
#include "core/device/cuda/cuda_host_pin.h"
#include "core/device/cuda/testing/fake_cudart.h"
#include "core/manager/memory_manager.h"
#include "core/shm/shared_buffer_registry.h"
#include "core/shm/test_registrar.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

constexpr uint64_t kBuf = 1 << 20;
constexpr uint64_t kObj = 256 << 10;

Principal User(uint32_t uid) {
  Principal p;
  p.uid = uid;
  p.name = "uid:" + std::to_string(uid);
  return p;
}

absl::Time Soon() { return absl::Now() + absl::Seconds(30); }

class CudaHostPinFakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_cuda::Reset();
    auto faults = std::make_unique<FaultInjector>();
    CudaDeviceConfig config;
    config.lmem_bytes = 4 << 20;
    config.smem_bytes = 4 << 20;
    auto device = CudaDevice::Create(config, faults.get());
    ASSERT_TRUE(device.ok()) << device.status();
    ordinal_ = (*device)->device_ordinal();
    auto mm = MemoryManager::Create(std::move(faults), *std::move(device));
    ASSERT_TRUE(mm.ok()) << mm.status();
    mm_ = *std::move(mm);
    reg_ = std::make_unique<shm::SharedBufferRegistry>(
        shm::ShmLimits{}, CudaShmPinHooks(ordinal_));
    conn_ = reg_->OpenConnection();
  }
  void TearDown() override {
    reg_.reset();
    mm_.reset();
    EXPECT_EQ(fake_cuda::LiveHostRegistrations(), 0u);
    EXPECT_EQ(fake_cuda::UnregistersWithCopiesPending(), 0u);
    fake_cuda::Reset();
  }

  // Registers a fresh sealed memfd of `size` for uid 1000; 0 on refusal.
  uint64_t Register(uint64_t size, shm::ShmError* error = nullptr) {
    uint64_t id = 0;
    const shm::ShmError e = reg_->Register(
        1000, conn_, shm::MakeMemfd(size, shm::kGoodSeals), size, &id);
    if (error != nullptr) *error = e;
    return e == shm::ShmError::kOk ? id : 0;
  }

  uint64_t NewLmemObject() {
    MemoryManager::CreateRequest req;
    req.size = kObj;
    req.placements = {"lmem"};
    auto r = mm_->CreateObject(User(1000), req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->object_id : 0;
  }

  int ordinal_ = 0;
  std::unique_ptr<MemoryManager> mm_;
  std::unique_ptr<shm::SharedBufferRegistry> reg_;
  uint64_t conn_ = 0;
};

TEST_F(CudaHostPinFakeTest, BufferIsPinnedOnceAndCopiesDmaStraightFromIt) {
  const uint64_t id = Register(kBuf);
  ASSERT_NE(id, 0u);
  EXPECT_EQ(fake_cuda::ApiCalls("cudaHostRegister"), 1u);
  EXPECT_EQ(fake_cuda::LiveHostRegistrations(), 1u);
  const uint64_t obj = NewLmemObject();
  ASSERT_NE(obj, 0u);
  // From here every host<->device copy must use registered (or the
  // runtime's own pinned) memory.
  fake_cuda::RefusePageableHostCopies(true);
  absl::StatusOr<shm::BufferRef> buf = reg_->Acquire(1000, id);
  ASSERT_TRUE(buf.ok()) << buf.status();
  for (uint64_t i = 0; i < kObj; ++i) buf->data()[i] = uint8_t(i * 7 + 3);
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(mm_->Write(User(1000), obj, 0,
                           absl::MakeConstSpan(buf->data(), kObj), Soon())
                    .ok());
    std::memset(buf->data() + kObj, 0, kObj);
    ASSERT_TRUE(mm_->Read(User(1000), obj, 0,
                          absl::MakeSpan(buf->data() + kObj, kObj), Soon())
                    .ok());
    ASSERT_EQ(std::memcmp(buf->data(), buf->data() + kObj, kObj), 0) << round;
  }
  EXPECT_GE(fake_cuda::RegisteredCopyBytes(), 6 * kObj);
  // Pinned once, never per copy.
  EXPECT_EQ(fake_cuda::ApiCalls("cudaHostRegister"), 1u);
  // The same copy out of ordinary (pageable) memory is refused by the fake
  // here: the passing copies above did not stage through such memory.
  std::vector<uint8_t> pageable(kObj, 1);
  EXPECT_FALSE(mm_->Write(User(1000), obj, 0, pageable, Soon()).ok());
  *buf = shm::BufferRef();
  EXPECT_EQ(reg_->Unregister(conn_, id), shm::ShmError::kOk);
  EXPECT_EQ(fake_cuda::ApiCalls("cudaHostUnregister"), 1u);
  EXPECT_EQ(fake_cuda::LiveHostRegistrations(), 0u);
}

TEST_F(CudaHostPinFakeTest, PinRefusedIsPinFailedAndLeavesNoMappingOrPin) {
  const int maps0 = shm::CountMemfdMaps();
  const int fds0 = shm::CountOpenFds();
  fake_cuda::FailNextCalls("cudaHostRegister", cudaErrorMemoryAllocation);
  shm::ShmError e = shm::ShmError::kOk;
  EXPECT_EQ(Register(kBuf, &e), 0u);
  EXPECT_EQ(e, shm::ShmError::kPinFailed);
  EXPECT_EQ(shm::CountMemfdMaps(), maps0);
  EXPECT_EQ(shm::CountOpenFds(), fds0);
  EXPECT_EQ(fake_cuda::LiveHostRegistrations(), 0u);
  EXPECT_EQ(fake_cuda::ApiCalls("cudaHostUnregister"), 0u);
  const shm::ShmStats s = reg_->stats();
  EXPECT_EQ(s.buffers, 0u);
  EXPECT_EQ(s.rejections, 1u);
  // The failure was not sticky: the next registration pins.
  EXPECT_NE(Register(kBuf), 0u);
  EXPECT_EQ(fake_cuda::LiveHostRegistrations(), 1u);
}

// A connection closing while a DMA out of its buffer is queued on a paused
// stream: teardown waits for the copy, then cudaHostUnregister, then munmap
// (the fake counts an unregister under a queued copy; TearDown asserts 0).
TEST_F(CudaHostPinFakeTest, ConnectionCloseUnpinsOnlyAfterCopyInFlightDrained) {
  const uint64_t id = Register(kBuf);
  ASSERT_NE(id, 0u);
  const uint64_t obj = NewLmemObject();
  ASSERT_NE(obj, 0u);
  absl::StatusOr<shm::BufferRef> buf = reg_->Acquire(1000, id);
  ASSERT_TRUE(buf.ok());
  std::memset(buf->data(), 0x5a, kObj);
  fake_cuda::PauseStreams();
  absl::Notification wrote;
  std::thread copier([&] {
    shm::BufferRef ref = *std::move(buf);
    EXPECT_TRUE(mm_->Write(User(1000), obj, 0,
                           absl::MakeConstSpan(ref.data(), kObj), Soon())
                    .ok());
    wrote.Notify();
  });
  std::atomic<bool> closed{false};
  std::thread closer([&] {
    reg_->CloseConnection(conn_);
    closed = true;
  });
  // Bounded: the copy cannot finish while paused, so neither can the close.
  EXPECT_FALSE(wrote.WaitForNotificationWithTimeout(absl::Milliseconds(100)));
  EXPECT_FALSE(closed.load());
  EXPECT_EQ(fake_cuda::ApiCalls("cudaHostUnregister"), 0u);
  fake_cuda::ResumeStreams();
  copier.join();
  closer.join();
  EXPECT_TRUE(closed.load());
  EXPECT_EQ(fake_cuda::ApiCalls("cudaHostUnregister"), 1u);
  EXPECT_EQ(fake_cuda::UnregistersWithCopiesPending(), 0u);
  std::vector<uint8_t> back(kObj);
  ASSERT_TRUE(mm_->Read(User(1000), obj, 0, absl::MakeSpan(back), Soon()).ok());
  EXPECT_EQ(back, std::vector<uint8_t>(kObj, 0x5a));
}

}  // namespace
}  // namespace gpumig
