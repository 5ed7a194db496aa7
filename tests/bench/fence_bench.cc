// Fence benchmarks: the latency a coalescing-only FenceWork saves over a
// queued one (a work-less FenceWork signals from the callback that completed
// its last dependency, no thread hop), and the raw cost of signalling with a
// callback.
//
//   bazel run -c opt //tests/bench:fence_bench -- --benchmark_format=json
//
// The latency benchmarks use manual timing: each iteration's time is from
// the dependency's Signal() to the work's fence being observed signalled, so
// real_time per iteration is that latency (setup is excluded).
//
// Runs with absl::Mutex deadlock detection off, as a production daemon
// would: Debian's absl is built without NDEBUG, where detection is on by
// default and costs a global graph lookup on every lock.
#include <chrono>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "core/fence/fence.h"
#include "core/fence/fence_work.h"
#include "core/fence/work_queue.h"

namespace gpumig {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double>(end - start).count();
}

// A coalescing-only FenceWork with one dependency: the work fence signals
// inline from the dependency's callback.
void BM_CoalescingFenceWorkLatency(benchmark::State& state) {
  for (auto _ : state) {
    FenceRef dep = Fence::Create("dep");
    std::unique_ptr<FenceWork> work = FenceWork::CreateCoalescing("coalesce");
    if (!work->Await(dep).ok() || !work->Commit().ok()) {
      state.SkipWithError("setup failed");
      break;
    }
    const Fence& fence = *work->fence();
    Clock::time_point start = Clock::now();
    absl::Status signalled = dep->Signal();
    while (!fence.IsSignaled()) {
    }
    Clock::time_point end = Clock::now();
    benchmark::DoNotOptimize(signalled);
    state.SetIterationTime(Seconds(start, end));
  }
}
BENCHMARK(BM_CoalescingFenceWorkLatency)->UseManualTime();

// The same with an empty work function run on a one-thread WorkQueue; the
// benchmark thread blocks in Wait() until the worker signals.
void BM_QueuedFenceWorkLatency(benchmark::State& state) {
  WorkQueue queue("bench", 1);
  for (auto _ : state) {
    FenceRef dep = Fence::Create("dep");
    absl::StatusOr<std::unique_ptr<FenceWork>> work = FenceWork::Create(
        "queued", [](absl::Status error) { return error; }, &queue);
    if (!work.ok() || !(*work)->Await(dep).ok() || !(*work)->Commit().ok()) {
      state.SkipWithError("setup failed");
      break;
    }
    const Fence& fence = *(*work)->fence();
    Clock::time_point start = Clock::now();
    absl::Status signalled = dep->Signal();
    fence.Wait();
    Clock::time_point end = Clock::now();
    benchmark::DoNotOptimize(signalled);
    state.SetIterationTime(Seconds(start, end));
  }
}
BENCHMARK(BM_QueuedFenceWorkLatency)->UseManualTime();

// Create a fence, add one callback, signal it: fences per second.
void BM_SignalWithCallback(benchmark::State& state) {
  int64_t ran = 0;
  for (auto _ : state) {
    FenceRef fence = Fence::Create("f");
    absl::Status added = fence->AddCallback([&ran](const Fence&) { ++ran; });
    absl::Status signalled = fence->Signal();
    benchmark::DoNotOptimize(added);
    benchmark::DoNotOptimize(signalled);
  }
  if (ran != static_cast<int64_t>(state.iterations())) {
    state.SkipWithError("a callback did not run exactly once");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SignalWithCallback);

}  // namespace
}  // namespace gpumig

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
