#include "core/device/sim_device.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "core/device/checksum.h"
#include "core/device/device.h"
#include "core/fault/fault_injector.h"
#include "core/fence/fence.h"
#include "core/mem/region.h"
#include "core/mem/sg_table.h"
#include "gtest/gtest.h"

// Test-side synchronisation uses fences, std::mutex and atomics only: no
// sleeps. (Debian's absl::Mutex is invisible to ThreadSanitizer.)

namespace gpumig {
namespace {

using ::absl::StatusCode;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;

RegionConfig LmemConfig(uint64_t size, uint64_t aperture) {
  RegionConfig c;
  c.name = "lmem";
  c.kind = RegionKind::kLmem;
  c.size = size;
  c.aperture = aperture;
  return c;
}

RegionConfig SmemConfig(uint64_t size) {
  RegionConfig c;
  c.name = "smem";
  c.kind = RegionKind::kSmem;
  c.size = size;
  c.aperture = size;
  return c;
}

std::unique_ptr<SimDevice> MakeDevice(FaultInjector* faults,
                                      uint64_t lmem = 4 * kMiB,
                                      uint64_t aperture = 1 * kMiB,
                                      uint64_t smem = 4 * kMiB) {
  SimDeviceConfig config;
  config.regions = {LmemConfig(lmem, aperture), SmemConfig(smem)};
  auto device = SimDevice::Create(std::move(config), faults);
  EXPECT_TRUE(device.ok()) << device.status();
  return device.ok() ? *std::move(device) : nullptr;
}

std::vector<uint8_t> Pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// Waits for `fence` and returns its error.
absl::Status Done(const FenceRef& fence) {
  fence->Wait();
  return fence->error();
}

// Number of contiguous pieces of the whole table.
size_t PieceCount(const SgTable& table) {
  size_t n = 0;
  table.ForEachRange(0, table.size(),
                     [&](uint64_t, uint64_t, uint64_t) { ++n; });
  return n;
}

// Fills `region` (or its aperture) with 4 KiB tables and frees every other
// one, so later allocations there come back as scattered 4 KiB blocks. The
// returned tables keep the holes apart; drop them to undo.
std::vector<SgTableRef> Fragment(Region* region, bool cpu_access) {
  std::vector<SgTableRef> all;
  for (;;) {
    auto t = region->Allocate(4 * kKiB, cpu_access);
    if (!t.ok()) break;
    all.push_back(*std::move(t));
  }
  std::vector<SgTableRef> keep;
  for (size_t i = 0; i < all.size(); ++i) {
    if (i % 2 == 1) keep.push_back(std::move(all[i]));
  }
  return keep;
}

// Reads a whole range back through the engine (works outside the aperture).
std::vector<uint8_t> ReadBack(SimDevice& device, const SgTableRef& table,
                              uint64_t offset, uint64_t length) {
  std::vector<uint8_t> out(length, 0xEE);
  absl::Status s =
      Done(device.engine().ReadToHost(table, offset, length, out.data(), {}));
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

void WriteAll(SimDevice& device, const SgTableRef& table, uint64_t offset,
              const std::vector<uint8_t>& data) {
  absl::Status s = Done(device.engine().WriteFromHost(data.data(), table,
                                                      offset, data.size(), {}));
  ASSERT_TRUE(s.ok()) << s;
}

class SimDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    device_ = MakeDevice(&faults_);
    ASSERT_NE(device_, nullptr);
    auto lmem = device_->FindRegion("lmem");
    auto smem = device_->FindRegion("smem");
    ASSERT_TRUE(lmem.ok());
    ASSERT_TRUE(smem.ok());
    lmem_ = *lmem;
    smem_ = *smem;
  }

  SgTableRef Alloc(Region* region, uint64_t size, bool cpu_access) {
    auto t = region->Allocate(size, cpu_access);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *std::move(t) : nullptr;
  }

  FaultInjector faults_;
  std::unique_ptr<SimDevice> device_;
  Region* lmem_ = nullptr;
  Region* smem_ = nullptr;
};

TEST(SimDeviceCreateTest, RejectsBadConfigs) {
  EXPECT_EQ(SimDevice::Create(SimDeviceConfig{}, nullptr).status().code(),
            StatusCode::kInvalidArgument);

  SimDeviceConfig dup;
  dup.regions = {SmemConfig(1 * kMiB), SmemConfig(1 * kMiB)};
  EXPECT_EQ(SimDevice::Create(dup, nullptr).status().code(),
            StatusCode::kInvalidArgument);

  SimDeviceConfig bad;
  bad.regions = {LmemConfig(1 * kMiB, 2 * kMiB)};  // aperture > size
  EXPECT_EQ(SimDevice::Create(bad, nullptr).status().code(),
            StatusCode::kInvalidArgument);

  SimDeviceConfig second_bad;
  second_bad.regions = {SmemConfig(1 * kMiB), LmemConfig(0, 0)};
  EXPECT_EQ(SimDevice::Create(second_bad, nullptr).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(SimDeviceCreateTest, DescribesItselfAndFindsRegions) {
  std::unique_ptr<SimDevice> device = MakeDevice(nullptr);
  ASSERT_NE(device, nullptr);
  EXPECT_EQ(device->backend(), "sim");
  EXPECT_TRUE(absl::StrContains(device->description(), "lmem"))
      << device->description();
  EXPECT_TRUE(absl::StrContains(device->description(), "aperture 1 MiB"))
      << device->description();
  std::vector<Region*> regions = device->regions();
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[0]->name(), "lmem");
  EXPECT_EQ(regions[1]->name(), "smem");
  EXPECT_EQ(*device->FindRegion("smem"), regions[1]);
  EXPECT_EQ(device->FindRegion("vram").status().code(), StatusCode::kNotFound);
}

TEST(SimDeviceCreateTest, LargeRegionIsLazy) {
  // 16 GiB of LMEM costs nothing until touched.
  std::unique_ptr<SimDevice> device =
      MakeDevice(nullptr, 16 * kGiB, 256 * kMiB, 1 * kMiB);
  ASSERT_NE(device, nullptr);
  Region* lmem = *device->FindRegion("lmem");
  auto aperture = lmem->Allocate(256 * kMiB, true);
  ASSERT_TRUE(aperture.ok()) << aperture.status();
  auto big = lmem->Allocate(8 * kGiB, false);
  ASSERT_TRUE(big.ok()) << big.status();
  auto t = lmem->Allocate(64 * kKiB, false);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_FALSE((*t)->cpu_accessible());
  const std::vector<uint8_t> data = Pattern(64 * kKiB, 1);
  WriteAll(*device, *t, 0, data);
  EXPECT_EQ(ReadBack(*device, *t, 0, data.size()), data);
  // Fresh memory reads as zeros.
  std::vector<uint8_t> zeros(4 * kKiB, 0);
  EXPECT_EQ(ReadBack(*device, *big, 8 * kGiB - 4 * kKiB, 4 * kKiB), zeros);
}

TEST_F(SimDeviceTest, CopyFillChecksumReadWriteAcrossFragmentedTables) {
  const uint32_t seed = 20240601;
  std::printf("seed = %u\n", seed);
  std::vector<SgTableRef> holes_s = Fragment(smem_, false);
  std::vector<SgTableRef> holes_l = Fragment(lmem_, false);
  SgTableRef src = Alloc(smem_, 64 * kKiB, false);
  SgTableRef dst = Alloc(lmem_, 64 * kKiB, false);
  ASSERT_NE(src, nullptr);
  ASSERT_NE(dst, nullptr);
  ASSERT_GT(PieceCount(*src), 8u);
  ASSERT_GT(PieceCount(*dst), 8u);

  // Write through the engine at an odd offset, read back.
  const std::vector<uint8_t> data = Pattern(60 * kKiB + 123, seed);
  WriteAll(*device_, src, 777, data);
  EXPECT_EQ(ReadBack(*device_, src, 777, data.size()), data);

  // Copy with different offsets on either side, so piece boundaries differ.
  const std::vector<uint8_t> before = ReadBack(*device_, dst, 0, dst->size());
  const uint64_t len = 50 * kKiB + 7;
  ASSERT_TRUE(
      Done(device_->engine().Copy(src, 777 + 1000, dst, 3333, len, {})).ok());
  std::vector<uint8_t> expect = before;
  memcpy(expect.data() + 3333, data.data() + 1000, len);
  EXPECT_EQ(ReadBack(*device_, dst, 0, dst->size()), expect);

  // Checksum over pieces equals FNV-1a of the bytes.
  auto sum = std::make_shared<uint64_t>(0);
  ASSERT_TRUE(
      Done(device_->engine().Checksum(dst, 100, 40 * kKiB + 1, sum, {})).ok());
  EXPECT_EQ(*sum, Fnv1a64(expect.data() + 100, 40 * kKiB + 1));
  ASSERT_TRUE(Done(device_->engine().Checksum(dst, 5, 0, sum, {})).ok());
  EXPECT_EQ(*sum, kFnv1a64Offset);

  // Fill a range crossing many pieces.
  ASSERT_TRUE(
      Done(device_->engine().Fill(dst, 4000, 30 * kKiB, 0x5A, {})).ok());
  memset(expect.data() + 4000, 0x5A, 30 * kKiB);
  EXPECT_EQ(ReadBack(*device_, dst, 0, dst->size()), expect);
}

TEST_F(SimDeviceTest, CpuCopyAndCpuFillWalkDifferentPieceBoundaries) {
  std::vector<SgTableRef> holes = Fragment(smem_, false);
  SgTableRef frag = Alloc(smem_, 48 * kKiB, false);
  SgTableRef flat = Alloc(lmem_, 64 * kKiB, true);  // inside the aperture
  ASSERT_NE(frag, nullptr);
  ASSERT_NE(flat, nullptr);
  ASSERT_GT(PieceCount(*frag), 4u);

  const std::vector<uint8_t> data = Pattern(48 * kKiB, 7);
  WriteAll(*device_, frag, 0, data);
  ASSERT_TRUE(CpuCopy(*device_, *frag, 1001, *flat, 5, 40 * kKiB).ok());
  std::vector<uint8_t> got = ReadBack(*device_, flat, 5, 40 * kKiB);
  EXPECT_EQ(0, memcmp(got.data(), data.data() + 1001, 40 * kKiB));

  // And back the other way, onto the fragmented table.
  ASSERT_TRUE(CpuFill(*device_, *flat, 0, 64 * kKiB, 0x11).ok());
  ASSERT_TRUE(CpuCopy(*device_, *flat, 0, *frag, 4095, 20 * kKiB).ok());
  std::vector<uint8_t> expect = data;
  memset(expect.data() + 4095, 0x11, 20 * kKiB);
  EXPECT_EQ(ReadBack(*device_, frag, 0, frag->size()), expect);

  // Errors from CpuMap come through.
  EXPECT_EQ(CpuFill(*device_, *frag, 0, 48 * kKiB + 1, 0).code(),
            StatusCode::kInvalidArgument);
}

TEST_F(SimDeviceTest, CpuCopyRefusesTablesOutsideTheAperture) {
  SgTableRef inside = Alloc(lmem_, 1 * kMiB, true);  // the whole aperture
  SgTableRef outside = Alloc(lmem_, 64 * kKiB, false);
  ASSERT_NE(inside, nullptr);
  ASSERT_NE(outside, nullptr);
  ASSERT_FALSE(outside->cpu_accessible());
  ASSERT_TRUE(
      Done(device_->engine().Fill(outside, 0, 64 * kKiB, 0x77, {})).ok());
  EXPECT_EQ(CpuCopy(*device_, *inside, 0, *outside, 0, 4 * kKiB).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(CpuCopy(*device_, *outside, 0, *inside, 0, 4 * kKiB).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(CpuFill(*device_, *outside, 0, 4 * kKiB, 0).code(),
            StatusCode::kFailedPrecondition);
  // Nothing was written.
  EXPECT_EQ(ReadBack(*device_, outside, 0, 64 * kKiB),
            std::vector<uint8_t>(64 * kKiB, 0x77));
}

TEST_F(SimDeviceTest, ExecutesInSubmissionOrder) {
  SgTableRef t = Alloc(smem_, 4 * kKiB, true);
  ASSERT_NE(t, nullptr);
  FenceRef gate = Fence::Create("gate");

  std::mutex mu;
  std::vector<int> order;
  std::vector<FenceRef> fences;
  for (int i = 0; i < 32; ++i) {
    // The first command waits on the gate; everything queues behind it.
    CopyEngine::Deps deps;
    if (i == 0) deps.push_back(gate);
    FenceRef f =
        device_->engine().Fill(t, 0, 4 * kKiB, static_cast<uint8_t>(i), deps);
    ASSERT_TRUE(f->AddCallback([&mu, &order, i](const Fence&) {
                   std::lock_guard<std::mutex> lock(mu);
                   order.push_back(i);
                 }).ok());
    fences.push_back(f);
  }
  EXPECT_EQ(device_->engine().inflight(), 32u);
  for (size_t i = 1; i < fences.size(); ++i) {
    EXPECT_EQ(fences[i]->context(), fences[0]->context());
    EXPECT_GT(fences[i]->seqno(), fences[i - 1]->seqno());
  }
  EXPECT_FALSE(fences.back()->IsSignaled());
  ASSERT_TRUE(gate->Signal().ok());
  ASSERT_TRUE(Done(fences.back()).ok());
  for (const FenceRef& f : fences) EXPECT_TRUE(f->IsSignaled());
  // Callbacks run on the engine thread right after each signal; once a later
  // command has signalled, every earlier callback has run.
  ASSERT_TRUE(Done(device_->engine().Fill(t, 0, 0, 0, {})).ok());
  EXPECT_EQ(device_->engine().inflight(), 0u);
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(order.size(), 32u);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(order[i], i);
  }
  EXPECT_EQ(ReadBack(*device_, t, 0, 4 * kKiB),
            std::vector<uint8_t>(4 * kKiB, 31));
}

TEST_F(SimDeviceTest, DependencyFailureSkipsCommandAndPropagatesFirstError) {
  SgTableRef src = Alloc(smem_, 16 * kKiB, true);
  SgTableRef dst = Alloc(lmem_, 16 * kKiB, false);
  ASSERT_NE(src, nullptr);
  ASSERT_NE(dst, nullptr);
  WriteAll(*device_, src, 0, Pattern(16 * kKiB, 3));
  ASSERT_TRUE(Done(device_->engine().Fill(dst, 0, 16 * kKiB, 0xAB, {})).ok());

  FenceRef ok = Fence::Create("ok");
  FenceRef first = Fence::Create("first");
  FenceRef second = Fence::Create("second");
  FenceRef copy = device_->engine().Copy(src, 0, dst, 0, 16 * kKiB,
                                         {ok, nullptr, first, second});
  FenceRef fill = device_->engine().Fill(dst, 0, 16 * kKiB, 0xCD, {second});
  // Signal out of order: the error of the first failed dependency in the
  // list wins, not the first to signal.
  ASSERT_TRUE(second->SignalWithError(absl::DataLossError("second")).ok());
  ASSERT_TRUE(ok->Signal().ok());
  ASSERT_TRUE(first->SignalWithError(absl::NotFoundError("first")).ok());

  absl::Status s = Done(copy);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "first");
  s = Done(fill);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_EQ(ReadBack(*device_, dst, 0, 16 * kKiB),
            std::vector<uint8_t>(16 * kKiB, 0xAB));
}

TEST_F(SimDeviceTest, FailedBlitPoisonsTheNextCommandThatAwaitsIt) {
  // Exposure scenario (a): an eviction blit fails, the next
  // owner's clear of the same blocks awaits it and is skipped.
  SgTableRef t = Alloc(lmem_, 8 * kKiB, false);
  ASSERT_NE(t, nullptr);
  ASSERT_TRUE(Done(device_->engine().Fill(t, 0, 8 * kKiB, 0x42, {})).ok());
  FenceRef evict = device_->engine().Fill(t, 0, 8 * kKiB, 0, {}, true);
  FenceRef clear = device_->engine().Fill(t, 0, 8 * kKiB, 0, {evict});
  EXPECT_EQ(Done(evict).code(), StatusCode::kInternal);
  absl::Status s = Done(clear);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "injected blit failure");
  // The old owner's bytes are still there: only a failsafe memset helps.
  EXPECT_EQ(ReadBack(*device_, t, 0, 8 * kKiB),
            std::vector<uint8_t>(8 * kKiB, 0x42));
}

TEST_F(SimDeviceTest, WedgeFailsEverythingAndRecoveringWorks) {
  SgTableRef src = Alloc(smem_, 8 * kKiB, true);
  SgTableRef dst = Alloc(lmem_, 8 * kKiB, false);
  ASSERT_NE(src, nullptr);
  ASSERT_NE(dst, nullptr);
  const std::vector<uint8_t> data = Pattern(8 * kKiB, 9);
  WriteAll(*device_, src, 0, data);
  ASSERT_TRUE(Done(device_->engine().Fill(dst, 0, 8 * kKiB, 0x33, {})).ok());

  FaultSpec wedge;
  wedge.kind = FaultKind::kWedgeEngine;
  auto id = faults_.Add(wedge);
  ASSERT_TRUE(id.ok());

  std::vector<uint8_t> host(8 * kKiB, 0xEE);
  auto sum = std::make_shared<uint64_t>(0);
  std::vector<FenceRef> fences = {
      device_->engine().Copy(src, 0, dst, 0, 8 * kKiB, {}),
      device_->engine().Fill(dst, 0, 8 * kKiB, 0, {}),
      device_->engine().Checksum(dst, 0, 8 * kKiB, sum, {}),
      device_->engine().ReadToHost(dst, 0, 8 * kKiB, host.data(), {}),
      device_->engine().WriteFromHost(data.data(), dst, 0, 8 * kKiB, {}),
  };
  for (const FenceRef& f : fences) {
    absl::Status s = Done(f);
    EXPECT_EQ(s.code(), StatusCode::kInternal) << f->name();
    EXPECT_EQ(s.message(), "copy engine wedged");
  }
  EXPECT_EQ(host, std::vector<uint8_t>(8 * kKiB, 0xEE));
  EXPECT_EQ(faults_.FiredTotal(FaultKind::kWedgeEngine), 5u);

  ASSERT_TRUE(faults_.Remove(*id).ok());
  ASSERT_TRUE(Done(device_->engine().Copy(src, 0, dst, 0, 8 * kKiB, {})).ok());
  EXPECT_EQ(ReadBack(*device_, dst, 0, 8 * kKiB), data);
}

TEST_F(SimDeviceTest, WedgeIsScopedByTheWrittenRegion) {
  SgTableRef s = Alloc(smem_, 4 * kKiB, true);
  SgTableRef l = Alloc(lmem_, 4 * kKiB, false);
  FaultSpec wedge;
  wedge.kind = FaultKind::kWedgeEngine;
  wedge.region = "lmem";
  ASSERT_TRUE(faults_.Add(wedge).ok());
  EXPECT_EQ(Done(device_->engine().Fill(l, 0, 4 * kKiB, 1, {})).code(),
            StatusCode::kInternal);
  EXPECT_TRUE(Done(device_->engine().Fill(s, 0, 4 * kKiB, 1, {})).ok());
  // lmem -> smem writes smem: not wedged.
  EXPECT_TRUE(Done(device_->engine().Copy(l, 0, s, 0, 4 * kKiB, {})).ok());
  EXPECT_EQ(Done(device_->engine().Copy(s, 0, l, 0, 4 * kKiB, {})).code(),
            StatusCode::kInternal);
}

TEST_F(SimDeviceTest, InjectedCopyFailureZeroesDestinationRange) {
  SgTableRef src = Alloc(smem_, 16 * kKiB, true);
  SgTableRef dst = Alloc(lmem_, 16 * kKiB, false);
  ASSERT_NE(src, nullptr);
  ASSERT_NE(dst, nullptr);
  WriteAll(*device_, src, 0, Pattern(16 * kKiB, 11));
  ASSERT_TRUE(Done(device_->engine().Fill(dst, 0, 16 * kKiB, 0xAB, {})).ok());

  absl::Status s = Done(device_->engine().Copy(src, 0, dst, 1000, 10 * kKiB, {},
                                               /*inject_failure=*/true));
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "injected blit failure");
  std::vector<uint8_t> expect(16 * kKiB, 0xAB);
  memset(expect.data() + 1000, 0, 10 * kKiB);
  EXPECT_EQ(ReadBack(*device_, dst, 0, 16 * kKiB), expect);
}

TEST_F(SimDeviceTest, InjectedFillFailureLeavesDestinationUntouched) {
  SgTableRef dst = Alloc(lmem_, 8 * kKiB, false);
  ASSERT_NE(dst, nullptr);
  ASSERT_TRUE(Done(device_->engine().Fill(dst, 0, 8 * kKiB, 0xAB, {})).ok());
  absl::Status s = Done(device_->engine().Fill(dst, 0, 8 * kKiB, 0, {}, true));
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "injected blit failure");
  EXPECT_EQ(ReadBack(*device_, dst, 0, 8 * kKiB),
            std::vector<uint8_t>(8 * kKiB, 0xAB));
}

TEST_F(SimDeviceTest, EngineLatencyDelaysButCompletes) {
  FaultSpec latency;
  latency.kind = FaultKind::kEngineLatency;
  latency.latency = absl::Milliseconds(2);
  ASSERT_TRUE(faults_.Add(latency).ok());
  SgTableRef t = Alloc(smem_, 4 * kKiB, true);
  const absl::Time start = absl::Now();
  ASSERT_TRUE(Done(device_->engine().Fill(t, 0, 4 * kKiB, 9, {})).ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(2));
  EXPECT_EQ(faults_.FiredTotal(FaultKind::kEngineLatency), 1u);
}

TEST_F(SimDeviceTest, RangesOutsideTheTableAreRejectedWithoutTouchingMemory) {
  SgTableRef a = Alloc(smem_, 8 * kKiB, true);
  SgTableRef b = Alloc(smem_, 8 * kKiB, true);
  ASSERT_TRUE(CpuFill(*device_, *a, 0, 8 * kKiB, 0x10).ok());
  ASSERT_TRUE(CpuFill(*device_, *b, 0, 8 * kKiB, 0x20).ok());
  auto sum = std::make_shared<uint64_t>(7);
  std::vector<uint8_t> host(16 * kKiB, 0xEE);
  std::vector<FenceRef> bad = {
      device_->engine().Copy(a, 0, b, 4 * kKiB, 4 * kKiB + 1, {}),
      device_->engine().Copy(a, 4 * kKiB + 1, b, 0, 4 * kKiB, {}),
      device_->engine().Fill(b, 8 * kKiB, 1, 0, {}),
      device_->engine().Fill(b, UINT64_MAX, 2, 0, {}),  // overflow
      device_->engine().Checksum(a, 0, 8 * kKiB + 1, sum, {}),
      device_->engine().Checksum(a, 0, 8, nullptr, {}),
      device_->engine().ReadToHost(a, 1, 8 * kKiB, host.data(), {}),
      device_->engine().ReadToHost(a, 0, 8, nullptr, {}),
      device_->engine().WriteFromHost(host.data(), b, 0, 16 * kKiB, {}),
      device_->engine().Fill(nullptr, 0, 1, 0, {}),
  };
  for (const FenceRef& f : bad) {
    EXPECT_EQ(Done(f).code(), StatusCode::kInvalidArgument) << f->name();
  }
  EXPECT_EQ(*sum, 7u);
  EXPECT_EQ(host, std::vector<uint8_t>(16 * kKiB, 0xEE));
  EXPECT_EQ(ReadBack(*device_, a, 0, 8 * kKiB),
            std::vector<uint8_t>(8 * kKiB, 0x10));
  EXPECT_EQ(ReadBack(*device_, b, 0, 8 * kKiB),
            std::vector<uint8_t>(8 * kKiB, 0x20));

  // A zero-length command at the very end is fine.
  EXPECT_TRUE(Done(device_->engine().Fill(b, 8 * kKiB, 0, 0, {})).ok());
}

TEST_F(SimDeviceTest, TablesOfAnotherDeviceAreRejected) {
  std::unique_ptr<SimDevice> other = MakeDevice(nullptr);
  ASSERT_NE(other, nullptr);
  SgTableRef foreign = Alloc(*other->FindRegion("smem"), 4 * kKiB, true);
  SgTableRef mine = Alloc(smem_, 4 * kKiB, true);
  EXPECT_EQ(device_->CpuMap(*foreign, 0, 4 * kKiB).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      Done(device_->engine().Copy(foreign, 0, mine, 0, 4 * kKiB, {})).code(),
      StatusCode::kInvalidArgument);
  foreign.reset();
}

TEST_F(SimDeviceTest, CpuMapEnforcesTheAperture) {
  SgTableRef inside = Alloc(lmem_, 256 * kKiB, true);
  ASSERT_NE(inside, nullptr);
  auto spans = device_->CpuMap(*inside, 0, 256 * kKiB);
  ASSERT_TRUE(spans.ok()) << spans.status();
  uint64_t total = 0;
  for (absl::Span<uint8_t> s : *spans) total += s.size();
  EXPECT_EQ(total, 256 * kKiB);

  // Fill the rest of the aperture so the next allocation lands outside it.
  SgTableRef rest = Alloc(lmem_, 768 * kKiB, true);
  ASSERT_NE(rest, nullptr);
  SgTableRef outside = Alloc(lmem_, 64 * kKiB, false);
  ASSERT_NE(outside, nullptr);
  ASSERT_FALSE(outside->cpu_accessible());
  auto refused = device_->CpuMap(*outside, 0, 4 * kKiB);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(refused.status().message(),
                                "outside the CPU-visible aperture (1048576 "
                                "bytes)"))
      << refused.status();
  EXPECT_TRUE(absl::StartsWith(refused.status().message(), "region lmem:"))
      << refused.status();

  // Outside the table is INVALID_ARGUMENT, even for an unmappable table.
  EXPECT_EQ(device_->CpuMap(*outside, 60 * kKiB, 8 * kKiB).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(device_->CpuMap(*inside, UINT64_MAX, 2).status().code(),
            StatusCode::kInvalidArgument);
  // Length 0 maps nothing.
  auto empty = device_->CpuMap(*outside, 0, 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(SimDeviceApertureTest, PieceStraddlingTheApertureIsRefused) {
  // A 2 MiB region with a 1.5 MiB aperture: one 2 MiB block straddles it.
  std::unique_ptr<SimDevice> device =
      MakeDevice(nullptr, 2 * kMiB, 1536 * kKiB, 1 * kMiB);
  ASSERT_NE(device, nullptr);
  Region* lmem = *device->FindRegion("lmem");
  auto t = lmem->Allocate(2 * kMiB, false);
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ((*t)->blocks().size(), 1u);
  EXPECT_TRUE(device->CpuMap(**t, 0, 1536 * kKiB).ok());
  EXPECT_TRUE(device->CpuMap(**t, 1536 * kKiB - 1, 1).ok());
  auto refused = device->CpuMap(**t, 1536 * kKiB - 1, 2);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.status().message(),
            "region lmem: offset 1572864 is outside the CPU-visible aperture "
            "(1572864 bytes)");
  // The engine is not limited by the aperture.
  EXPECT_TRUE(Done(device->engine().Fill(*t, 0, 2 * kMiB, 1, {})).ok());
}

TEST_F(SimDeviceTest, SmemIsFullyMappable) {
  SgTableRef all = Alloc(smem_, 4 * kMiB, false);
  ASSERT_NE(all, nullptr);
  EXPECT_TRUE(all->cpu_accessible());
  auto spans = device_->CpuMap(*all, 0, 4 * kMiB);
  ASSERT_TRUE(spans.ok()) << spans.status();
  uint64_t total = 0;
  for (absl::Span<uint8_t> s : *spans) {
    memset(s.data(), 0x3C, s.size());
    total += s.size();
  }
  EXPECT_EQ(total, 4 * kMiB);
  auto sum = std::make_shared<uint64_t>(0);
  ASSERT_TRUE(Done(device_->engine().Checksum(all, 0, 4 * kMiB, sum, {})).ok());
  std::vector<uint8_t> expect(4 * kMiB, 0x3C);
  EXPECT_EQ(*sum, Fnv1a64(expect.data(), expect.size()));
}

TEST_F(SimDeviceTest, ShutdownDrainsAndLaterCommandsAreAborted) {
  SgTableRef t = Alloc(smem_, 64 * kKiB, true);
  std::vector<FenceRef> fences;
  for (int i = 0; i < 16; ++i) {
    fences.push_back(device_->engine().Fill(t, i * 4 * kKiB, 4 * kKiB,
                                            static_cast<uint8_t>(i + 1), {}));
  }
  device_->Shutdown();
  for (const FenceRef& f : fences) {
    EXPECT_TRUE(f->IsSignaled());
    EXPECT_TRUE(f->error().ok()) << f->error();
  }
  EXPECT_EQ(device_->engine().inflight(), 0u);

  FenceRef late = device_->engine().Fill(t, 0, 4 * kKiB, 0xFF, {});
  absl::Status s = Done(late);
  EXPECT_EQ(s.code(), StatusCode::kAborted);
  EXPECT_EQ(s.message(), "device shut down");
  EXPECT_GT(late->seqno(), fences.back()->seqno());
  EXPECT_EQ(device_->engine().inflight(), 0u);
  device_->Shutdown();  // idempotent

  // Nothing ran after the shutdown; the CPU still sees the memory.
  auto spans = device_->CpuMap(*t, 0, 4 * kKiB);
  ASSERT_TRUE(spans.ok());
  EXPECT_EQ((*spans)[0][0], 1);
}

TEST_F(SimDeviceTest, ShutdownFromAnEngineCallbackDoesNotDeadlock) {
  SgTableRef t = Alloc(smem_, 4 * kKiB, true);
  FenceRef gate = Fence::Create("gate");
  FenceRef a = device_->engine().Fill(t, 0, 4 * kKiB, 1, {gate});
  SimDevice* device = device_.get();
  ASSERT_TRUE(
      a->AddCallback([device](const Fence&) { device->Shutdown(); }).ok());
  FenceRef b = device_->engine().Fill(t, 0, 4 * kKiB, 2, {});  // queued before
  ASSERT_TRUE(gate->Signal().ok());
  EXPECT_TRUE(Done(a).ok());
  EXPECT_TRUE(Done(b).ok());
  FenceRef c = device_->engine().Fill(t, 0, 4 * kKiB, 3, {});
  EXPECT_EQ(Done(c).code(), StatusCode::kAborted);
  device_->Shutdown();  // joins
  auto spans = device_->CpuMap(*t, 0, 1);
  ASSERT_TRUE(spans.ok());
  EXPECT_EQ((*spans)[0][0], 2);
}

TEST_F(SimDeviceTest, QueuedCommandsKeepTheirTablesAlive) {
  SgTableRef src = Alloc(lmem_, 32 * kKiB, false);
  SgTableRef dst = Alloc(smem_, 32 * kKiB, true);
  ASSERT_NE(src, nullptr);
  ASSERT_NE(dst, nullptr);
  const std::vector<uint8_t> data = Pattern(32 * kKiB, 5);
  WriteAll(*device_, src, 0, data);
  const uint64_t allocated = lmem_->Usage().allocated_bytes;

  const std::vector<Block> src_blocks = src->blocks();
  FenceRef gate = Fence::Create("gate");
  FenceRef copy = device_->engine().Copy(src, 0, dst, 0, 32 * kKiB, {gate});
  src.reset();  // the queued copy is now the only holder
  EXPECT_EQ(lmem_->Usage().allocated_bytes, allocated);

  // Nobody else may get those blocks while the copy is queued.
  std::vector<SgTableRef> others;
  for (;;) {
    auto t = lmem_->Allocate(4 * kKiB, false);
    if (!t.ok()) break;
    others.push_back(*std::move(t));
  }
  EXPECT_EQ(lmem_->Usage().free_bytes, 0u);
  for (const SgTableRef& o : others) {
    for (const Block& b : o->blocks()) {
      for (const Block& mine : src_blocks) {
        EXPECT_TRUE(b.offset + b.size <= mine.offset ||
                    mine.offset + mine.size <= b.offset)
            << "block at " << b.offset << " handed out while in use";
      }
    }
  }
  EXPECT_EQ(device_->engine().inflight(), 1u);
  ASSERT_TRUE(gate->Signal().ok());
  ASSERT_TRUE(Done(copy).ok());
  EXPECT_EQ(ReadBack(*device_, dst, 0, 32 * kKiB), data);
  others.clear();
  // The engine dropped its reference before signalling.
  EXPECT_EQ(lmem_->Usage().allocated_bytes, 0u);
}

TEST_F(SimDeviceTest, DestroyingTheDeviceDrainsTheQueue) {
  SgTableRef t = Alloc(smem_, 4 * kKiB, true);
  FenceRef gate = Fence::Create("gate");
  FenceRef fill = device_->engine().Fill(t, 0, 4 * kKiB, 1, {gate});
  t.reset();
  ASSERT_TRUE(gate->Signal().ok());
  device_.reset();  // Shutdown + join; the command's table is dropped first
  EXPECT_TRUE(fill->IsSignaled());
  EXPECT_TRUE(fill->error().ok());
}

}  // namespace
}  // namespace gpumig
