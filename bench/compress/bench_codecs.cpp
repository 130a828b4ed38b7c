// bench_codecs.cpp — encode and decode throughput of the baseline (GRACE)
// codecs on one core, with a memcpy of the same buffer as the baseline:
//   BM_CodecEncode/<codec>/<n>  everything a rank does before its last
//                               exchange: begin() (error feedback, selection
//                               or quantization, payload encoding); for
//                               PowerSGD also round 1 (orthonormalize P,
//                               Q = M^T P)
//   BM_CodecDecode/<codec>/<n>  everything after it, on a one-rank world:
//                               advance() (payload validation and decoding,
//                               or PowerSGD's P Q^T and residual) + finish()
//   BM_CodecMemcpy/<n>          memcpy of the n * 4-byte gradient
// Throughput is gradient bytes (numel * 4) per second for all rows.
// Counters: payload_bytes (this rank's bytes sent per step) and ratio
// (dense fp32 bytes / payload bytes). Codecs run with their defaults.
// Run: build/bench/compress/bench_compress --benchmark_filter=Codec --benchmark_min_time=0.3
#include <benchmark/benchmark.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codec_rng.h"
#include "hearth/compress/compressor.h"
#include "hearth/compress/registry.h"

namespace hearth::compress {
namespace {

const char* const kCodecs[] = {"none", "fp16", "topk",    "randomk",
                               "qsgd", "int8", "signsgd", "powersgd"};
const std::size_t kSizes[] = {std::size_t{1} << 20, std::size_t{16} << 20};

// Normal noise, generated once per size.
const std::vector<float>& gradient(std::size_t n) {
  static std::map<std::size_t, std::vector<float>> cache;
  auto& g = cache[n];
  if (g.empty()) {
    CodecRng rng(n);
    g.resize(n);
    for (float& x : g) x = static_cast<float>(rng.normal());
  }
  return g;
}

// A one-rank world echoes the request back as the result.
ExchangeResult echo(const ExchangeRequest& request) {
  ExchangeResult result;
  if (request.op == ExchangeOp::kAllgatherBytes) {
    result.gathered.push_back(request.bytes);
  } else {
    result.summed = request.floats;
  }
  return result;
}

// Runs begin() and every round but the last; returns the last request.
ExchangeRequest encodeStep(Compressor& c, const std::vector<float>& g) {
  ExchangeRequest request = c.begin({g.data(), g.size(), DType::kFloat32}, StepInfo{});
  if (c.name() == "powersgd") request = *c.advance(echo(request));
  return request;
}

void setCounters(benchmark::State& state, const Compressor& c, std::size_t n) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * sizeof(float)));
  state.counters["payload_bytes"] = static_cast<double>(c.bytesSent());
  state.counters["ratio"] = static_cast<double>(n * sizeof(float)) / c.bytesSent();
}

void encodeBenchmark(benchmark::State& state, const std::string& name, std::size_t n) {
  const auto& g = gradient(n);
  auto c = makeCompressor(name, nlohmann::json::object(), n);
  for (auto _ : state) {
    ExchangeRequest request = encodeStep(*c, g);
    benchmark::DoNotOptimize(request.bytes.data());
    benchmark::DoNotOptimize(request.floats.data());
    state.PauseTiming();
    c->advance(echo(request));  // finish the step so the next begin() is legal
    state.ResumeTiming();
  }
  setCounters(state, *c, n);
}

void decodeBenchmark(benchmark::State& state, const std::string& name, std::size_t n) {
  const auto& g = gradient(n);
  auto c = makeCompressor(name, nlohmann::json::object(), n);
  std::vector<float> out(n);
  for (auto _ : state) {
    state.PauseTiming();
    ExchangeResult result = echo(encodeStep(*c, g));
    state.ResumeTiming();
    c->advance(std::move(result));
    c->finish(out.data());
    benchmark::DoNotOptimize(out.data());
  }
  setCounters(state, *c, n);
}

void memcpyBenchmark(benchmark::State& state, std::size_t n) {
  const auto& g = gradient(n);
  std::vector<float> out(n);
  for (auto _ : state) {
    std::memcpy(out.data(), g.data(), n * sizeof(float));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * sizeof(float)));
  state.counters["payload_bytes"] = static_cast<double>(n * sizeof(float));
  state.counters["ratio"] = 1.0;
}

const bool kRegistered = [] {
  for (std::size_t n : kSizes) {
    const std::string size = "/" + std::to_string(n);
    benchmark::RegisterBenchmark(("BM_CodecMemcpy" + size).c_str(), memcpyBenchmark, n)
        ->Unit(benchmark::kMillisecond);
    for (const char* name : kCodecs) {
      benchmark::RegisterBenchmark(("BM_CodecEncode/" + std::string(name) + size).c_str(),
                                   encodeBenchmark, name, n)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("BM_CodecDecode/" + std::string(name) + size).c_str(),
                                   decodeBenchmark, name, n)
          ->Unit(benchmark::kMillisecond);
    }
  }
  return true;
}();

}  // namespace
}  // namespace hearth::compress
