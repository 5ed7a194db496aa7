// Shared buffers on a real GPU: a registered buffer is page-locked once
// (cuda_host_pin.h), copies between it and an LMEM object through
// MemoryManager come back exact, and ending the buffer unpins and unmaps it.
// Skips (counted as skipped) without a GPU; the same paths run without one
// in cuda_host_pin_fake_test.
#include "core/device/cuda/cuda_host_pin.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "core/device/cuda/cuda_device.h"
#include "core/manager/memory_manager.h"
#include "core/shm/shared_buffer_registry.h"
#include "core/shm/test_registrar.h"
#include "gtest/gtest.h"

namespace gpumig {
namespace {

TEST(CudaHostPinTest, RegisteredBufferRoundTripsThroughLmemExactly) {
  absl::StatusOr<int> gpus = CudaDevice::Probe();
  if (!gpus.ok()) GTEST_SKIP() << gpus.status().message();
  auto faults = std::make_unique<FaultInjector>();
  CudaDeviceConfig config;
  config.lmem_bytes = 512ull << 20;
  config.smem_bytes = 64ull << 20;
  auto device = CudaDevice::Create(config, faults.get());
  ASSERT_TRUE(device.ok()) << device.status();
  const int ordinal = (*device)->device_ordinal();
  auto mm = MemoryManager::Create(std::move(faults), *std::move(device));
  ASSERT_TRUE(mm.ok()) << mm.status();
  shm::SharedBufferRegistry reg(shm::ShmLimits{}, CudaShmPinHooks(ordinal));
  const uint64_t conn = reg.OpenConnection();
  const uint64_t size = 256ull << 20;
  const int maps0 = shm::CountMemfdMaps();
  uint64_t id = 0;
  const absl::Time t0 = absl::Now();
  ASSERT_EQ(reg.Register(1000, conn, shm::MakeMemfd(size, shm::kGoodSeals),
                         size, &id),
            shm::ShmError::kOk);
  std::printf("register (mmap + cudaHostRegister) of 256 MiB: %.1f ms\n",
              absl::ToDoubleMilliseconds(absl::Now() - t0));
  Principal who;
  who.uid = 1000;
  who.name = "uid:1000";
  MemoryManager::CreateRequest req;
  req.size = size / 2;
  req.placements = {"lmem"};
  auto obj = (*mm)->CreateObject(who, req);
  ASSERT_TRUE(obj.ok()) << obj.status();
  {
    absl::StatusOr<shm::BufferRef> buf = reg.Acquire(1000, id);
    ASSERT_TRUE(buf.ok());
    uint8_t* p = buf->data();
    for (uint64_t i = 0; i < size / 2; i += 4096) p[i] = uint8_t(i >> 12) | 1;
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    ASSERT_TRUE((*mm)
                    ->Write(who, obj->object_id, 0,
                            absl::MakeConstSpan(p, size / 2), deadline)
                    .ok());
    std::memset(p + size / 2, 0, size / 2);
    ASSERT_TRUE((*mm)
                    ->Read(who, obj->object_id, 0,
                           absl::MakeSpan(p + size / 2, size / 2), deadline)
                    .ok());
    EXPECT_EQ(std::memcmp(p, p + size / 2, size / 2), 0);
  }
  EXPECT_EQ(reg.Unregister(conn, id), shm::ShmError::kOk);
  EXPECT_EQ(shm::CountMemfdMaps(), maps0);
  EXPECT_EQ(reg.stats().buffers, 0u);
}

}  // namespace
}  // namespace gpumig
