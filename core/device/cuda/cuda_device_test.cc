// CudaDevice against the CopyEngine and Device contracts (device.h), the sim's
// tests ported. Tests that need a GPU skip cleanly without one (no driver, no
// device, or a build without the CUDA toolkit); the config and "no GPU"
// tests run everywhere.
#include "core/device/cuda/cuda_device.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/device/checksum.h"
#include "core/device/device.h"
#include "core/fault/fault_injector.h"
#include "core/fence/fence.h"
#include "core/mem/region.h"
#include "core/mem/sg_table.h"
#include "gtest/gtest.h"

// Test-side synchronisation uses fences, std::mutex and atomics only: no
// sleeps.

namespace gpumig {
namespace {

using ::absl::StatusCode;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

#define SKIP_WITHOUT_GPU()                                   \
  do {                                                       \
    absl::StatusOr<int> gpus = CudaDevice::Probe();          \
    if (!gpus.ok()) GTEST_SKIP() << gpus.status().message(); \
  } while (0)

CudaDeviceConfig Config(uint64_t lmem = 4 * kMiB, uint64_t smem = 4 * kMiB) {
  CudaDeviceConfig c;
  c.lmem_bytes = lmem;
  c.smem_bytes = smem;
  return c;
}

std::unique_ptr<CudaDevice> MakeDevice(FaultInjector* faults,
                                       uint64_t lmem = 4 * kMiB,
                                       uint64_t smem = 4 * kMiB) {
  auto device = CudaDevice::Create(Config(lmem, smem), faults);
  EXPECT_TRUE(device.ok()) << device.status();
  return device.ok() ? *std::move(device) : nullptr;
}

std::vector<uint8_t> Pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

absl::Status Done(const FenceRef& fence) {
  fence->Wait();
  return fence->error();
}

size_t PieceCount(const SgTable& table) {
  size_t n = 0;
  table.ForEachRange(0, table.size(),
                     [&](uint64_t, uint64_t, uint64_t) { ++n; });
  return n;
}

// Fills `region` with 4 KiB tables and frees every other one, so later
// allocations come back as scattered 4 KiB blocks.
std::vector<SgTableRef> Fragment(Region* region) {
  std::vector<SgTableRef> all;
  for (;;) {
    auto t = region->Allocate(4 * kKiB, false);
    if (!t.ok()) break;
    all.push_back(*std::move(t));
  }
  std::vector<SgTableRef> keep;
  for (size_t i = 0; i < all.size(); ++i) {
    if (i % 2 == 1) keep.push_back(std::move(all[i]));
  }
  return keep;
}

std::vector<uint8_t> ReadBack(CudaDevice& device, const SgTableRef& table,
                              uint64_t offset, uint64_t length) {
  std::vector<uint8_t> out(length, 0xEE);
  absl::Status s =
      Done(device.engine().ReadToHost(table, offset, length, out.data(), {}));
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

void WriteAll(CudaDevice& device, const SgTableRef& table, uint64_t offset,
              const std::vector<uint8_t>& data) {
  absl::Status s = Done(device.engine().WriteFromHost(data.data(), table,
                                                      offset, data.size(), {}));
  ASSERT_TRUE(s.ok()) << s;
}

// ---- Everywhere (CI has no GPU) -------------------------------------------

TEST(CudaDeviceNoGpuTest, CreateWithoutAGpuIsUnavailableWithAClearMessage) {
  absl::StatusOr<int> gpus = CudaDevice::Probe();
  if (gpus.ok()) GTEST_SKIP() << "a GPU is present";
  EXPECT_EQ(gpus.status().code(), StatusCode::kUnavailable);
  auto device = CudaDevice::Create(Config(), nullptr);
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(device.status().message(), gpus.status().message());
#if GPUMIG_HAVE_CUDA
  EXPECT_TRUE(absl::StartsWith(device.status().message(),
                               "no CUDA-capable GPU: cudaGetDeviceCount"))
      << device.status();
  EXPECT_GT(device.status().message().size(),
            strlen("no CUDA-capable GPU: cudaGetDeviceCount: "))
      << "the message must carry CUDA's reason";
#else
  EXPECT_TRUE(absl::StartsWith(device.status().message(),
                               "built without the CUDA toolkit"))
      << device.status();
#endif
}

TEST(CudaDeviceConfigTest, RejectsBadConfigsBeforeTouchingTheGpu) {
  struct Case {
    const char* what;
    CudaDeviceConfig config;
  };
  std::vector<Case> cases;
  {
    CudaDeviceConfig c = Config();
    c.lmem_bytes = 0;
    cases.push_back({"lmem size 0", c});
  }
  {
    CudaDeviceConfig c = Config();
    c.smem_bytes = 4 * kMiB + 1;
    cases.push_back({"smem not a multiple of the chunk", c});
  }
  {
    CudaDeviceConfig c = Config();
    c.chunk_size = 3 * 4096;
    cases.push_back({"chunk not a power of two", c});
  }
  {
    CudaDeviceConfig c = Config();
    c.chunk_size = 512;
    cases.push_back({"chunk below 4 KiB", c});
  }
  {
    CudaDeviceConfig c = Config();
    c.smem_name = "lmem";
    cases.push_back({"same names", c});
  }
  {
    CudaDeviceConfig c = Config();
    c.lmem_name = "";
    cases.push_back({"empty name", c});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    absl::Status v = ValidateCudaDeviceConfig(c.config);
    EXPECT_EQ(v.code(), StatusCode::kInvalidArgument) << v;
    EXPECT_TRUE(absl::StartsWith(v.message(), "cuda device: ")) << v;
    auto device = CudaDevice::Create(c.config, nullptr);
    EXPECT_EQ(device.status().code(), StatusCode::kInvalidArgument)
        << device.status();
  }
  EXPECT_TRUE(ValidateCudaDeviceConfig(Config()).ok());
  CudaDeviceConfig big = Config(16ull << 30, 1ull << 30);
  big.chunk_size = 64 * kKiB;
  EXPECT_TRUE(ValidateCudaDeviceConfig(big).ok());
}

TEST(CudaDeviceConfigTest, MissingOrdinalIsInvalidArgument) {
  SKIP_WITHOUT_GPU();
  CudaDeviceConfig c = Config();
  c.device_ordinal = 1000;
  EXPECT_EQ(CudaDevice::Create(c, nullptr).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(CudaDeviceBaseTest, DefaultFallbackIsUnimplemented) {
  // The Device default, seen through a device that does not override it.
  class Plain : public Device {
   public:
    absl::string_view backend() const override { return "plain"; }
    std::string description() const override { return ""; }
    std::vector<Region*> regions() const override { return {}; }
    CopyEngine& engine() override { abort(); }
    absl::StatusOr<std::vector<absl::Span<uint8_t>>> CpuMap(const SgTable&,
                                                            uint64_t,
                                                            uint64_t) override {
      return absl::UnimplementedError("");
    }
    void Shutdown() override {}
  };
  auto region = Region::Create({"smem", RegionKind::kSmem, 1 * kMiB, 1 * kMiB});
  ASSERT_TRUE(region.ok());
  auto t = (*region)->Allocate(4 * kKiB, true);
  ASSERT_TRUE(t.ok());
  Plain plain;
  EXPECT_EQ(plain.FallbackCopy(**t, 0, **t, 0, 0).code(),
            StatusCode::kUnimplemented);
  absl::Status s = plain.FallbackFill(**t, 0, 4 * kKiB, 0);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
  EXPECT_EQ(s.message(), "backend plain has no device fallback path");
}

// ---- With a GPU
// --------------------------------------------------------------

class CudaDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_GPU();
    device_ = MakeDevice(&faults_);
    ASSERT_NE(device_, nullptr);
    lmem_ = *device_->FindRegion("lmem");
    smem_ = *device_->FindRegion("smem");
  }

  SgTableRef Alloc(Region* region, uint64_t size) {
    auto t = region->Allocate(size, false);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *std::move(t) : nullptr;
  }

  FaultInjector faults_;
  std::unique_ptr<CudaDevice> device_;
  Region* lmem_ = nullptr;
  Region* smem_ = nullptr;
};

TEST_F(CudaDeviceTest, DescribesItselfAndFindsRegions) {
  EXPECT_EQ(device_->backend(), "cuda");
  EXPECT_TRUE(absl::StrContains(device_->description(), "no CPU aperture"))
      << device_->description();
  std::vector<Region*> regions = device_->regions();
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[0]->name(), "lmem");
  EXPECT_EQ(regions[0]->kind(), RegionKind::kLmem);
  EXPECT_EQ(regions[0]->aperture(), 0u);
  EXPECT_EQ(regions[1]->name(), "smem");
  EXPECT_EQ(regions[1]->aperture(), regions[1]->size());
  // LMEM cannot be allocated CPU-accessible at all.
  EXPECT_EQ(lmem_->Allocate(4 * kKiB, true).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(CudaDeviceTest, PoolsStartZeroed) {
  SgTableRef l = Alloc(lmem_, 4 * kMiB);
  SgTableRef s = Alloc(smem_, 4 * kMiB);
  EXPECT_EQ(ReadBack(*device_, l, 0, 4 * kMiB),
            std::vector<uint8_t>(4 * kMiB, 0));
  EXPECT_EQ(ReadBack(*device_, s, 0, 4 * kMiB),
            std::vector<uint8_t>(4 * kMiB, 0));
}

TEST_F(CudaDeviceTest, CopyFillChecksumReadWriteAcrossFragmentedTables) {
  const uint32_t seed = 20240601;
  std::printf("seed = %u\n", seed);
  for (bool src_lmem : {false, true}) {
    for (bool dst_lmem : {false, true}) {
      SCOPED_TRACE(::testing::Message()
                   << "src " << (src_lmem ? "lmem" : "smem") << " dst "
                   << (dst_lmem ? "lmem" : "smem"));
      std::vector<SgTableRef> holes_s = Fragment(smem_);
      std::vector<SgTableRef> holes_l = Fragment(lmem_);
      SgTableRef src = Alloc(src_lmem ? lmem_ : smem_, 64 * kKiB);
      SgTableRef dst = Alloc(dst_lmem ? lmem_ : smem_, 64 * kKiB);
      ASSERT_NE(src, nullptr);
      ASSERT_NE(dst, nullptr);
      ASSERT_GT(PieceCount(*src), 8u);
      ASSERT_GT(PieceCount(*dst), 8u);

      const std::vector<uint8_t> data = Pattern(60 * kKiB + 123, seed);
      WriteAll(*device_, src, 777, data);
      EXPECT_EQ(ReadBack(*device_, src, 777, data.size()), data);

      const std::vector<uint8_t> before =
          ReadBack(*device_, dst, 0, dst->size());
      const uint64_t len = 50 * kKiB + 7;
      ASSERT_TRUE(
          Done(device_->engine().Copy(src, 777 + 1000, dst, 3333, len, {}))
              .ok());
      std::vector<uint8_t> expect = before;
      memcpy(expect.data() + 3333, data.data() + 1000, len);
      EXPECT_EQ(ReadBack(*device_, dst, 0, dst->size()), expect);

      auto sum = std::make_shared<uint64_t>(0);
      ASSERT_TRUE(
          Done(device_->engine().Checksum(dst, 100, 40 * kKiB + 1, sum, {}))
              .ok());
      EXPECT_EQ(*sum, Fnv1a64(expect.data() + 100, 40 * kKiB + 1));
      ASSERT_TRUE(Done(device_->engine().Checksum(dst, 5, 0, sum, {})).ok());
      EXPECT_EQ(*sum, kFnv1a64Offset);

      ASSERT_TRUE(
          Done(device_->engine().Fill(dst, 4000, 30 * kKiB, 0x5A, {})).ok());
      memset(expect.data() + 4000, 0x5A, 30 * kKiB);
      EXPECT_EQ(ReadBack(*device_, dst, 0, dst->size()), expect);
    }
  }
}

TEST_F(CudaDeviceTest, OverlappingCopyWithinOneTableIsAMemmove) {
  for (Region* region : {lmem_, smem_}) {
    SCOPED_TRACE(region->name());
    std::vector<SgTableRef> holes = Fragment(region);
    SgTableRef t = Alloc(region, 64 * kKiB);
    ASSERT_NE(t, nullptr);
    const std::vector<uint8_t> data = Pattern(64 * kKiB, 77);
    for (int64_t shift : {4096 + 5, -(4096 + 5), 1, -1}) {
      WriteAll(*device_, t, 0, data);
      const uint64_t len = 40 * kKiB;
      const uint64_t src = 8 * kKiB;
      const uint64_t dst = src + shift;
      ASSERT_TRUE(Done(device_->engine().Copy(t, src, t, dst, len, {})).ok());
      std::vector<uint8_t> expect = data;
      memmove(expect.data() + dst, data.data() + src, len);
      EXPECT_EQ(ReadBack(*device_, t, 0, t->size()), expect)
          << "shift " << shift;
    }
  }
}

TEST_F(CudaDeviceTest, LargeCopyRoundTripsExactly) {
  // 24 MiB: one contiguous run up and down (at most two back), and a
  // checksum of LMEM that crosses the 8 MiB staging chunks.
  constexpr uint64_t kSize = 24 * kMiB;
  std::unique_ptr<CudaDevice> big = MakeDevice(nullptr, 64 * kMiB, 64 * kMiB);
  ASSERT_NE(big, nullptr);
  Region* lmem = *big->FindRegion("lmem");
  Region* smem = *big->FindRegion("smem");
  SgTableRef s = *smem->Allocate(kSize, false);
  SgTableRef l = *lmem->Allocate(kSize, false);
  SgTableRef back = *smem->Allocate(kSize, false);
  ASSERT_EQ(PieceCount(*s), 1u);
  ASSERT_EQ(PieceCount(*l), 1u);
  std::vector<uint8_t> data(kSize);
  for (uint64_t i = 0; i < kSize; ++i) {
    data[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  }
  auto spans = big->CpuMap(*s, 0, kSize);
  ASSERT_TRUE(spans.ok());
  memcpy((*spans)[0].data(), data.data(), data.size());
  FenceRef up = big->engine().Copy(s, 0, l, 0, kSize, {});
  FenceRef down = big->engine().Copy(l, 0, back, 0, kSize, {up});
  ASSERT_TRUE(Done(down).ok()) << down->error();
  auto out = big->CpuMap(*back, 0, kSize);
  ASSERT_TRUE(out.ok());
  uint64_t at = 0;
  for (absl::Span<uint8_t> piece : *out) {
    EXPECT_EQ(0, memcmp(piece.data(), data.data() + at, piece.size()))
        << "piece at " << at;
    at += piece.size();
  }
  EXPECT_EQ(at, kSize);
  auto sum = std::make_shared<uint64_t>(0);
  ASSERT_TRUE(Done(big->engine().Checksum(l, 3, 16 * kMiB + 5, sum, {})).ok());
  EXPECT_EQ(*sum, Fnv1a64(data.data() + 3, 16 * kMiB + 5));
}

TEST_F(CudaDeviceTest, ExecutesInSubmissionOrderAcrossBothStreams) {
  // Alternate commands writing LMEM (to-device stream) and SMEM (to-host
  // stream) that all touch the same bytes: only a global order gives the
  // final content, and fences must signal in seqno order.
  SgTableRef l = Alloc(lmem_, 64 * kKiB);
  SgTableRef s = Alloc(smem_, 64 * kKiB);
  FenceRef gate = Fence::Create("gate");
  std::mutex mu;
  std::vector<int> order;
  std::vector<FenceRef> fences;
  for (int i = 0; i < 64; ++i) {
    CopyEngine::Deps deps;
    if (i == 0) deps.push_back(gate);
    FenceRef f;
    switch (i % 4) {
      case 0:
        f = device_->engine().Fill(s, 0, 64 * kKiB, static_cast<uint8_t>(i),
                                   deps);
        break;
      case 1:
        f = device_->engine().Copy(s, 0, l, 0, 64 * kKiB, deps);
        break;
      case 2:
        f = device_->engine().Fill(s, 0, 64 * kKiB, 0xFF, deps);
        break;
      case 3:
        f = device_->engine().Copy(l, 0, s, 0, 64 * kKiB, deps);
        break;
    }
    ASSERT_TRUE(f->AddCallback([&mu, &order, i](const Fence&) {
                   std::lock_guard<std::mutex> lock(mu);
                   order.push_back(i);
                 }).ok());
    fences.push_back(f);
  }
  EXPECT_EQ(device_->engine().inflight(), 64u);
  for (size_t i = 1; i < fences.size(); ++i) {
    EXPECT_EQ(fences[i]->context(), fences[0]->context());
    EXPECT_GT(fences[i]->seqno(), fences[i - 1]->seqno());
  }
  EXPECT_FALSE(fences.back()->IsSignaled());
  ASSERT_TRUE(gate->Signal().ok());
  ASSERT_TRUE(Done(fences.back()).ok());
  for (const FenceRef& f : fences) {
    EXPECT_TRUE(f->IsSignaled());
    EXPECT_TRUE(f->error().ok()) << f->error();
  }
  ASSERT_TRUE(Done(device_->engine().Fill(s, 0, 0, 0, {})).ok());
  EXPECT_EQ(device_->engine().inflight(), 0u);
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(order.size(), 64u);
    for (int i = 0; i < 64; ++i) EXPECT_EQ(order[i], i);
  }
  // Last round: fill s with 60, copy to l, fill s with 0xFF, copy l back.
  EXPECT_EQ(ReadBack(*device_, s, 0, 64 * kKiB),
            std::vector<uint8_t>(64 * kKiB, 60));
}

TEST_F(CudaDeviceTest, DependencyFailureSkipsCommandAndPropagatesFirstError) {
  SgTableRef src = Alloc(smem_, 16 * kKiB);
  SgTableRef dst = Alloc(lmem_, 16 * kKiB);
  WriteAll(*device_, src, 0, Pattern(16 * kKiB, 3));
  ASSERT_TRUE(Done(device_->engine().Fill(dst, 0, 16 * kKiB, 0xAB, {})).ok());

  FenceRef ok = Fence::Create("ok");
  FenceRef first = Fence::Create("first");
  FenceRef second = Fence::Create("second");
  FenceRef copy = device_->engine().Copy(src, 0, dst, 0, 16 * kKiB,
                                         {ok, nullptr, first, second});
  FenceRef fill = device_->engine().Fill(dst, 0, 16 * kKiB, 0xCD, {second});
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

TEST_F(CudaDeviceTest, FailedBlitPoisonsTheNextCommandThatAwaitsIt) {
  // Scenario (a) on the GPU: the dependencies are this engine's own fences,
  // so the engine consults the status it decided for them.
  SgTableRef t = Alloc(lmem_, 8 * kKiB);
  ASSERT_TRUE(Done(device_->engine().Fill(t, 0, 8 * kKiB, 0x42, {})).ok());
  FenceRef gate = Fence::Create("gate");
  FenceRef evict = device_->engine().Fill(t, 0, 8 * kKiB, 0, {gate}, true);
  FenceRef clear = device_->engine().Fill(t, 0, 8 * kKiB, 0, {evict});
  FenceRef after = device_->engine().Fill(t, 0, 8 * kKiB, 0x43, {clear});
  ASSERT_TRUE(gate->Signal().ok());
  EXPECT_EQ(Done(evict).code(), StatusCode::kInternal);
  absl::Status s = Done(clear);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "injected blit failure");
  EXPECT_EQ(Done(after).message(), "injected blit failure");
  EXPECT_EQ(ReadBack(*device_, t, 0, 8 * kKiB),
            std::vector<uint8_t>(8 * kKiB, 0x42));
}

TEST_F(CudaDeviceTest, WedgeFailsEverythingAndRecoveringWorks) {
  SgTableRef src = Alloc(smem_, 8 * kKiB);
  SgTableRef dst = Alloc(lmem_, 8 * kKiB);
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

TEST_F(CudaDeviceTest, WedgeIsScopedByTheWrittenRegion) {
  SgTableRef s = Alloc(smem_, 4 * kKiB);
  SgTableRef l = Alloc(lmem_, 4 * kKiB);
  FaultSpec wedge;
  wedge.kind = FaultKind::kWedgeEngine;
  wedge.region = "lmem";
  ASSERT_TRUE(faults_.Add(wedge).ok());
  EXPECT_EQ(Done(device_->engine().Fill(l, 0, 4 * kKiB, 1, {})).code(),
            StatusCode::kInternal);
  EXPECT_TRUE(Done(device_->engine().Fill(s, 0, 4 * kKiB, 1, {})).ok());
  EXPECT_TRUE(Done(device_->engine().Copy(l, 0, s, 0, 4 * kKiB, {})).ok());
  EXPECT_EQ(Done(device_->engine().Copy(s, 0, l, 0, 4 * kKiB, {})).code(),
            StatusCode::kInternal);
}

TEST_F(CudaDeviceTest, InjectedCopyFailureZeroesDestinationRange) {
  for (Region* region : {lmem_, smem_}) {
    SCOPED_TRACE(region->name());
    SgTableRef src = Alloc(smem_, 16 * kKiB);
    SgTableRef dst = Alloc(region, 16 * kKiB);
    WriteAll(*device_, src, 0, Pattern(16 * kKiB, 11));
    ASSERT_TRUE(Done(device_->engine().Fill(dst, 0, 16 * kKiB, 0xAB, {})).ok());
    absl::Status s = Done(device_->engine().Copy(src, 0, dst, 1000, 10 * kKiB,
                                                 {}, /*inject_failure=*/true));
    EXPECT_EQ(s.code(), StatusCode::kInternal);
    EXPECT_EQ(s.message(), "injected blit failure");
    std::vector<uint8_t> expect(16 * kKiB, 0xAB);
    memset(expect.data() + 1000, 0, 10 * kKiB);
    EXPECT_EQ(ReadBack(*device_, dst, 0, 16 * kKiB), expect);
  }
}

TEST_F(CudaDeviceTest, InjectedFillFailureLeavesDestinationUntouched) {
  SgTableRef dst = Alloc(lmem_, 8 * kKiB);
  ASSERT_TRUE(Done(device_->engine().Fill(dst, 0, 8 * kKiB, 0xAB, {})).ok());
  absl::Status s = Done(device_->engine().Fill(dst, 0, 8 * kKiB, 0, {}, true));
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "injected blit failure");
  EXPECT_EQ(ReadBack(*device_, dst, 0, 8 * kKiB),
            std::vector<uint8_t>(8 * kKiB, 0xAB));
}

TEST_F(CudaDeviceTest, EngineLatencyDelaysButCompletes) {
  FaultSpec latency;
  latency.kind = FaultKind::kEngineLatency;
  latency.latency = absl::Milliseconds(2);
  ASSERT_TRUE(faults_.Add(latency).ok());
  SgTableRef t = Alloc(lmem_, 4 * kKiB);
  const absl::Time start = absl::Now();
  ASSERT_TRUE(Done(device_->engine().Fill(t, 0, 4 * kKiB, 9, {})).ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(2));
  EXPECT_EQ(faults_.FiredTotal(FaultKind::kEngineLatency), 1u);
}

TEST_F(CudaDeviceTest, RangesOutsideTheTableAreRejectedWithoutTouchingMemory) {
  SgTableRef a = Alloc(lmem_, 8 * kKiB);
  SgTableRef b = Alloc(smem_, 8 * kKiB);
  ASSERT_TRUE(Done(device_->engine().Fill(a, 0, 8 * kKiB, 0x10, {})).ok());
  ASSERT_TRUE(Done(device_->engine().Fill(b, 0, 8 * kKiB, 0x20, {})).ok());
  auto sum = std::make_shared<uint64_t>(7);
  std::vector<uint8_t> host(16 * kKiB, 0xEE);
  std::vector<FenceRef> bad = {
      device_->engine().Copy(a, 0, b, 4 * kKiB, 4 * kKiB + 1, {}),
      device_->engine().Copy(a, 4 * kKiB + 1, b, 0, 4 * kKiB, {}),
      device_->engine().Fill(b, 8 * kKiB, 1, 0, {}),
      device_->engine().Fill(a, UINT64_MAX, 2, 0, {}),
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
  EXPECT_TRUE(Done(device_->engine().Fill(b, 8 * kKiB, 0, 0, {})).ok());
}

TEST_F(CudaDeviceTest, TablesOfAnotherDeviceAreRejected) {
  std::unique_ptr<CudaDevice> other = MakeDevice(nullptr);
  ASSERT_NE(other, nullptr);
  SgTableRef foreign = Alloc(*other->FindRegion("smem"), 4 * kKiB);
  SgTableRef mine = Alloc(smem_, 4 * kKiB);
  EXPECT_EQ(device_->CpuMap(*foreign, 0, 4 * kKiB).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      Done(device_->engine().Copy(foreign, 0, mine, 0, 4 * kKiB, {})).code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(device_->FallbackCopy(*foreign, 0, *mine, 0, 4 * kKiB).code(),
            StatusCode::kInvalidArgument);
  foreign.reset();
}

TEST_F(CudaDeviceTest, CpuMapRefusesAllOfLmemAndMapsAllOfSmem) {
  SgTableRef l = Alloc(lmem_, 64 * kKiB);
  ASSERT_FALSE(l->cpu_accessible());
  auto refused = device_->CpuMap(*l, 0, 1);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StartsWith(refused.status().message(), "region lmem: "))
      << refused.status();
  EXPECT_TRUE(absl::EndsWith(refused.status().message(),
                             "is outside the CPU-visible aperture (0 bytes)"))
      << refused.status();
  EXPECT_EQ(CpuFill(*device_, *l, 0, 4 * kKiB, 0).code(),
            StatusCode::kFailedPrecondition);
  auto empty = device_->CpuMap(*l, 0, 0);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(device_->CpuMap(*l, 60 * kKiB, 8 * kKiB).status().code(),
            StatusCode::kInvalidArgument);

  SgTableRef all = Alloc(smem_, 4 * kMiB);
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

TEST_F(CudaDeviceTest, FallbackCopyAndFillReachLmemWithoutTheEngine) {
  // The engine is wedged: only the independent path can move bytes.
  FaultSpec wedge;
  wedge.kind = FaultKind::kWedgeEngine;
  std::vector<SgTableRef> holes_s = Fragment(smem_);
  std::vector<SgTableRef> holes_l = Fragment(lmem_);
  SgTableRef s = Alloc(smem_, 64 * kKiB);
  SgTableRef l = Alloc(lmem_, 64 * kKiB);
  SgTableRef l2 = Alloc(lmem_, 64 * kKiB);
  SgTableRef s2 = Alloc(smem_, 64 * kKiB);
  const std::vector<uint8_t> data = Pattern(64 * kKiB, 21);
  WriteAll(*device_, s, 0, data);
  ASSERT_TRUE(faults_.Add(wedge).ok());

  const CudaFallbackCounters before = device_->fallback_counters();
  // smem -> lmem -> lmem -> smem, at shifted offsets.
  ASSERT_TRUE(device_->FallbackCopy(*s, 0, *l, 0, 64 * kKiB).ok());
  ASSERT_TRUE(device_->FallbackCopy(*l, 100, *l2, 200, 60 * kKiB).ok());
  ASSERT_TRUE(device_->FallbackFill(*s2, 0, 64 * kKiB, 0x77).ok());
  ASSERT_TRUE(device_->FallbackCopy(*l2, 200, *s2, 300, 60 * kKiB).ok());
  std::vector<uint8_t> expect(64 * kKiB, 0x77);
  memcpy(expect.data() + 300, data.data() + 100, 60 * kKiB);
  auto spans = device_->CpuMap(*s2, 0, 64 * kKiB);
  ASSERT_TRUE(spans.ok());
  std::vector<uint8_t> got;
  for (absl::Span<uint8_t> p : *spans)
    got.insert(got.end(), p.begin(), p.end());
  EXPECT_EQ(got, expect);

  // Fill LMEM, then read it back through the fallback path.
  ASSERT_TRUE(device_->FallbackFill(*l, 10, 20 * kKiB, 0x99).ok());
  ASSERT_TRUE(device_->FallbackCopy(*l, 0, *s2, 0, 64 * kKiB).ok());
  std::vector<uint8_t> expect_l = data;
  memset(expect_l.data() + 10, 0x99, 20 * kKiB);
  spans = device_->CpuMap(*s2, 0, 64 * kKiB);
  got.clear();
  for (absl::Span<uint8_t> p : *spans)
    got.insert(got.end(), p.begin(), p.end());
  EXPECT_EQ(got, expect_l);

  const CudaFallbackCounters after = device_->fallback_counters();
  EXPECT_EQ(after.copies - before.copies, 4u);
  EXPECT_EQ(after.fills - before.fills, 2u);
  EXPECT_EQ(after.failures, 0u);
  EXPECT_EQ(after.bytes - before.bytes, (64 + 60 + 64 + 60 + 20 + 64) * kKiB);
  // The engine stayed wedged throughout.
  EXPECT_EQ(Done(device_->engine().Fill(l, 0, 1, 0, {})).message(),
            "copy engine wedged");
}

TEST_F(CudaDeviceTest, FallbackRejectsBadRangesAndWorksAfterShutdown) {
  SgTableRef l = Alloc(lmem_, 8 * kKiB);
  SgTableRef s = Alloc(smem_, 8 * kKiB);
  EXPECT_EQ(device_->FallbackCopy(*s, 1, *l, 0, 8 * kKiB).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(device_->FallbackFill(*l, 8 * kKiB, 1, 0).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(device_->FallbackCopy(*l, 0, *l, 100, 4 * kKiB).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(device_->FallbackCopy(*l, 0, *s, 0, 0).ok());

  device_->Shutdown();
  ASSERT_TRUE(device_->FallbackFill(*l, 0, 8 * kKiB, 0x5E).ok());
  ASSERT_TRUE(device_->FallbackCopy(*l, 0, *s, 0, 8 * kKiB).ok());
  auto spans = device_->CpuMap(*s, 0, 8 * kKiB);
  ASSERT_TRUE(spans.ok());
  for (absl::Span<uint8_t> p : *spans) {
    for (uint8_t b : p) ASSERT_EQ(b, 0x5E);
  }
}

TEST_F(CudaDeviceTest, RunsExposeUnifiedAddresses) {
  SgTableRef l = Alloc(lmem_, 1 * kMiB);
  SgTableRef s = Alloc(smem_, 1 * kMiB);
  auto lr = device_->Runs(*l, 0, 1 * kMiB);
  auto sr = device_->Runs(*s, 4096, 4096);
  ASSERT_TRUE(lr.ok());
  ASSERT_TRUE(sr.ok());
  ASSERT_EQ(lr->size(), 1u);
  EXPECT_TRUE((*lr)[0].device_memory);
  EXPECT_EQ((*lr)[0].size, 1 * kMiB);
  ASSERT_EQ(sr->size(), 1u);
  EXPECT_FALSE((*sr)[0].device_memory);
  auto spans = device_->CpuMap(*s, 4096, 4096);
  ASSERT_TRUE(spans.ok());
  EXPECT_EQ((*sr)[0].address, (*spans)[0].data());
  EXPECT_EQ(device_->Runs(*l, 1, 1 * kMiB).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(CudaDeviceTest, ShutdownDrainsAndLaterCommandsAreAborted) {
  SgTableRef t = Alloc(smem_, 64 * kKiB);
  SgTableRef l = Alloc(lmem_, 64 * kKiB);
  std::vector<FenceRef> fences;
  for (int i = 0; i < 16; ++i) {
    fences.push_back(device_->engine().Fill(t, i * 4 * kKiB, 4 * kKiB,
                                            static_cast<uint8_t>(i + 1), {}));
    fences.push_back(
        device_->engine().Copy(t, i * 4 * kKiB, l, i * 4 * kKiB, 4 * kKiB, {}));
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
  device_->Shutdown();
  auto spans = device_->CpuMap(*t, 0, 4 * kKiB);
  ASSERT_TRUE(spans.ok());
  EXPECT_EQ((*spans)[0][0], 1);
}

TEST_F(CudaDeviceTest, ShutdownFromAnEngineCallbackDoesNotDeadlock) {
  SgTableRef t = Alloc(smem_, 4 * kKiB);
  FenceRef gate = Fence::Create("gate");
  FenceRef a = device_->engine().Fill(t, 0, 4 * kKiB, 1, {gate});
  CudaDevice* device = device_.get();
  ASSERT_TRUE(
      a->AddCallback([device](const Fence&) { device->Shutdown(); }).ok());
  FenceRef b = device_->engine().Fill(t, 0, 4 * kKiB, 2, {});
  ASSERT_TRUE(gate->Signal().ok());
  EXPECT_TRUE(Done(a).ok());
  EXPECT_TRUE(Done(b).ok());
  FenceRef c = device_->engine().Fill(t, 0, 4 * kKiB, 3, {});
  EXPECT_EQ(Done(c).code(), StatusCode::kAborted);
  device_->Shutdown();
  auto spans = device_->CpuMap(*t, 0, 1);
  ASSERT_TRUE(spans.ok());
  EXPECT_EQ((*spans)[0][0], 2);
}

TEST_F(CudaDeviceTest, QueuedCommandsKeepTheirTablesAlive) {
  SgTableRef src = Alloc(lmem_, 32 * kKiB);
  SgTableRef dst = Alloc(smem_, 32 * kKiB);
  const std::vector<uint8_t> data = Pattern(32 * kKiB, 5);
  WriteAll(*device_, src, 0, data);
  const uint64_t allocated = lmem_->Usage().allocated_bytes;
  FenceRef gate = Fence::Create("gate");
  FenceRef copy = device_->engine().Copy(src, 0, dst, 0, 32 * kKiB, {gate});
  src.reset();
  EXPECT_EQ(lmem_->Usage().allocated_bytes, allocated);
  EXPECT_EQ(device_->engine().inflight(), 1u);
  ASSERT_TRUE(gate->Signal().ok());
  ASSERT_TRUE(Done(copy).ok());
  EXPECT_EQ(ReadBack(*device_, dst, 0, 32 * kKiB), data);
  // The engine dropped its reference before signalling.
  EXPECT_EQ(lmem_->Usage().allocated_bytes, 0u);
}

TEST_F(CudaDeviceTest, DestroyingTheDeviceDrainsTheQueue) {
  SgTableRef t = Alloc(lmem_, 4 * kKiB);
  FenceRef gate = Fence::Create("gate");
  FenceRef fill = device_->engine().Fill(t, 0, 4 * kKiB, 1, {gate});
  t.reset();
  ASSERT_TRUE(gate->Signal().ok());
  device_.reset();
  EXPECT_TRUE(fill->IsSignaled());
  EXPECT_TRUE(fill->error().ok());
}

}  // namespace
}  // namespace gpumig
