// bench_dgc.cpp — Deep Gradient Compression throughput on one core, with its
// baselines in the same binary:
//   BM_DgcStep            the full DGC step (DgcCompressor::begin: momentum
//                         correction, sampling, threshold selection, masking,
//                         payload encoding) at density 0.1% after warm-up
//   BM_DgcSparsify        the same without encoding (DgcSparsifier::step)
//   BM_DgcStreamBaseline  a pass reading g, u, v and writing u, v (12 B read +
//                         8 B written per element: what the fused pass must
//                         touch at least; DGC additionally re-reads v, 4 B),
//                         with the DGC step's own SIMD update kernel
//   BM_TorchTopK          exact at::topk(at::abs(v), k) on the same data
//   BM_DgcWireBytes       payload size at 0.1% for value types and index
//                         encodings, +/- zstd, relative to dense fp32
// Throughput is reported as gradient bytes (numel * 4) per second for all of
// them, so the rows compare directly.
// Run: build/bench/compress/bench_compress --benchmark_filter=Dgc\|TorchTopK
#include <benchmark/benchmark.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <map>
#include <memory>
#include <random>
#include <vector>

#include "dgc.h"
#include "dgc_selection.h"
#include "dgc_update_kernels.h"

namespace hearth::compress {
namespace {

constexpr double kDensity = 0.001;
constexpr float kMomentum = 0.9f;

// Normal noise, generated once per size (64M floats take a while), with
// kShiftRange extra entries: step t reads the window starting at shift(t),
// so every coordinate sees a fresh value each step (a random walk in v, as
// with real minibatch noise) without generating data in the timed loop.
constexpr std::size_t kShiftRange = 1u << 20;

const std::vector<float>& noise(std::size_t n, std::uint32_t seed) {
  static std::map<std::pair<std::size_t, std::uint32_t>, std::vector<float>> cache;
  auto& g = cache[{n, seed}];
  if (g.empty()) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    g.resize(n + kShiftRange);
    for (auto& e : g) e = normal(rng);
  }
  return g;
}

GradientView window(const std::vector<float>& pool, std::size_t n, std::int64_t step) {
  const std::size_t shift = (static_cast<std::size_t>(step) * 104729u) % kShiftRange;
  return {pool.data() + shift, n, DType::kFloat32};
}

DgcOptions benchOptions() {
  DgcOptions o;
  o.density = kDensity;
  o.momentum = kMomentum;
  o.warmupPeriods = 0;  // measured after warm-up
  return o;
}

void setCommon(benchmark::State& state, std::size_t n) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(n) * 4);
  state.counters["numel"] = static_cast<double>(n);
}

void BM_DgcStep(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& g = noise(n, 1);
  DgcCompressor dgc(benchOptions(), n);
  StepInfo info;
  for (; info.step < 8; ++info.step) dgc.begin(window(g, n, info.step), info);
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto request = dgc.begin(window(g, n, info.step), info);
    bytes = request.bytes.size();
    benchmark::DoNotOptimize(request.bytes.data());
    ++info.step;
  }
  setCommon(state, n);
  state.counters["selected"] = static_cast<double>(dgc.sparsifier().lastCount());
  state.counters["payload_bytes"] = static_cast<double>(bytes);
  state.counters["scans"] = dgc.sparsifier().selectionStats().scans;
}
BENCHMARK(BM_DgcStep)->Arg(1 << 20)->Arg(16 << 20)->Arg(64 << 20)->Unit(benchmark::kMillisecond);

void BM_DgcSparsify(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& g = noise(n, 1);
  DgcSparsifier dgc(benchOptions(), n);
  StepInfo info;
  for (; info.step < 8; ++info.step) dgc.step(window(g, n, info.step), info);
  std::map<SelectionPath, int> paths;
  std::int64_t fullScans = 0;
  double candidates = 0;
  for (auto _ : state) {
    const auto& sel = dgc.step(window(g, n, info.step), info);
    benchmark::DoNotOptimize(sel.values.data());
    ++paths[dgc.selectionStats().path];
    fullScans += dgc.selectionStats().scans;
    candidates += static_cast<double>(dgc.selectionStats().prefilterCount);
    ++info.step;
  }
  state.counters["candidates_per_k"] =
      candidates / static_cast<double>(std::max<std::int64_t>(1, state.iterations())) /
      static_cast<double>(dgc.lastTarget());
  state.counters["full_scans_per_step"] =
      static_cast<double>(fullScans) /
      static_cast<double>(std::max<std::int64_t>(1, state.iterations()));
  setCommon(state, n);
  state.counters["selected"] = static_cast<double>(dgc.lastCount());
  state.counters["exact_share"] =
      1.0 - static_cast<double>(paths[SelectionPath::kThreshold]) /
                static_cast<double>(std::max<std::int64_t>(1, state.iterations()));
}
BENCHMARK(BM_DgcSparsify)
    ->Arg(1 << 20)
    ->Arg(16 << 20)
    ->Arg(64 << 20)
    ->Unit(benchmark::kMillisecond);

// The streaming roofline of the fused pass: u = m*u + g; v += u, with the
// same SIMD kernel (and level) the DGC step uses, and nothing else.
void BM_DgcStreamBaseline(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& g = noise(n, 1);
  std::vector<float> u(n, 0.0f), v(n, 0.0f);
  std::int64_t step = 0;
  for (auto _ : state) {
    // The same moving window of g as BM_DgcStep (a new gradient each step).
    const auto* gs = static_cast<const float*>(window(g, n, step++).data);
    dgcUpdate(DgcUpdate::kMomentum, gs, u.data(), v.data(), n, kMomentum, 1.0f);
    benchmark::DoNotOptimize(v.data());
    benchmark::ClobberMemory();
  }
  setCommon(state, n);
  state.counters["traffic_B_per_elem"] = 20;
}
BENCHMARK(BM_DgcStreamBaseline)
    ->Arg(1 << 20)
    ->Arg(16 << 20)
    ->Arg(64 << 20)
    ->Unit(benchmark::kMillisecond);

// DGC's selection alone (strided sample, threshold, one counting scan,
// adaptation) on the same data as BM_TorchTopK: the like-for-like comparison
// with torch::topk, which does selection only.
void BM_DgcSelect(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto& v = noise(n, 1);
  const std::size_t k = selectionCount(kDensity, n);
  const SamplePlan plan = planSamples(n, kDensity, 0.01);
  std::vector<std::uint32_t> samples(plan.count);
  std::vector<std::uint32_t> out;
  ThresholdSelector selector;
  std::uint64_t step = 0;
  std::size_t selected = 0;
  int scans = 0;
  for (auto _ : state) {
    // The sampling the DGC step does (fused into its update pass there).
    SampleCursor cursor(plan, sampleOffset(plan, 7 * ++step));
    std::size_t count = 0;
    cursor.takeBelow(v.data(), n, samples.data(), samples.size(), count);
    selected = selector.select(v.data(), n, k, samples.data(), count, out);
    scans += selector.stats().scans;
    benchmark::DoNotOptimize(out.data());
  }
  setCommon(state, n);
  state.counters["k"] = static_cast<double>(k);
  state.counters["selected"] = static_cast<double>(selected);
  state.counters["scans"] =
      benchmark::Counter(static_cast<double>(scans), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_DgcSelect)->Arg(1 << 20)->Arg(16 << 20)->Arg(64 << 20)->Unit(benchmark::kMillisecond);

void BM_TorchTopK(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  at::set_num_threads(1);
  auto& g = const_cast<std::vector<float>&>(noise(n, 1));
  const at::Tensor v = at::from_blob(g.data(), {static_cast<std::int64_t>(n)}, at::kFloat);
  const auto k = static_cast<std::int64_t>(selectionCount(kDensity, n));
  for (auto _ : state) {
    auto result = at::topk(at::abs(v), k);
    benchmark::DoNotOptimize(std::get<1>(result).data_ptr());
  }
  setCommon(state, n);
  state.counters["k"] = static_cast<double>(k);
}
BENCHMARK(BM_TorchTopK)->Arg(1 << 20)->Arg(16 << 20)->Arg(64 << 20)->Unit(benchmark::kMillisecond);

// Payload size at 0.1% of 16M elements. Args: value type (0 fp32, 1 fp16,
// 2 bf16), index encoding (1 raw u32, 2 delta varint), zstd (0/1).
void BM_DgcWireBytes(benchmark::State& state) {
  const std::size_t n = 16u << 20;
  const auto& g = noise(n, 1);
  DgcSparsifier dgc(benchOptions(), n);
  StepInfo info;
  for (; info.step < 8; ++info.step) dgc.step(window(g, n, info.step), info);
  const SparseSelection& sel = dgc.selection();
  PayloadContent content;
  content.codec = CodecId::kDgc;
  content.numel = n;
  content.count = sel.size();
  content.indices = sel.indices.data();
  content.valueType = state.range(0) == 0   ? ValueType::kF32
                      : state.range(0) == 1 ? ValueType::kF16
                                            : ValueType::kBF16;
  content.values = sel.values.data();
  EncodeOptions options;
  options.indexEncoding = static_cast<IndexEncoding>(state.range(1));
  options.zstd = state.range(2) != 0;
  std::size_t bytes = 0;
  for (auto _ : state) {
    const auto payload = encodePayload(content, options);
    bytes = payload.size();
    benchmark::DoNotOptimize(payload.data());
  }
  state.SetLabel(std::string(valueTypeName(content.valueType)) + "+" +
                 indexEncodingName(*options.indexEncoding) + (options.zstd ? "+zstd" : ""));
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["count"] = static_cast<double>(sel.size());
  state.counters["x_smaller_than_dense"] =
      4.0 * static_cast<double>(n) / static_cast<double>(bytes);
}
BENCHMARK(BM_DgcWireBytes)
    ->ArgsProduct({{0}, {1, 2}, {0, 1}})
    ->ArgsProduct({{1, 2}, {2}, {0, 1}})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace hearth::compress
