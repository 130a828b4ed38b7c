// dgc_selection.h (internal) — selecting the entries of largest magnitude of a
// float buffer: exact top-k (radix select on magnitude bits, reusable by any
// sparsifying codec) and DGC's threshold selection (threshold estimated from a
// strided sample, one counting scan, adaptation, exact fallback).
//
// Magnitudes are compared as "magnitude keys": the IEEE bits with the sign
// cleared, which order exactly like |x| for every non-NaN float (zeros,
// denormals and infinities included) and compare as integers. Inputs must be
// NaN-free; a NaN ranks above +Inf.
//
// Ties are always broken towards the lower index, so every result is
// deterministic; output indices are strictly increasing.
//
// Thread-safety: the free functions are pure (safe from any thread); a
// ThresholdSelector object is not thread-safe (it owns scratch buffers).
// Nothing blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace hearth::compress {

// |x| as an integer that orders like |x| (sign bit cleared).
inline std::uint32_t magnitudeKey(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u & 0x7FFFFFFFu;
}

inline float keyToMagnitude(std::uint32_t key) {
  float f;
  std::memcpy(&f, &key, sizeof f);
  return f;
}

// Exact top-k of |x[0..n)|: writes to `out` (resized; capacity is reused) the
// indices of the min(k, eligible) entries of largest magnitude, in increasing
// index order, ties broken towards the lower index. skipZeros: zero entries
// (+0 and -0) are never selected, so fewer than k may come back.
// Cost: four passes over x (radix select on 10/11/10-bit digits) plus the
// output; no allocation beyond `out`. This is the shared helper other
// sparsifying codecs (topk) can reuse.
void selectTopKByMagnitude(const float* x, std::size_t n, std::size_t k,
                           std::vector<std::uint32_t>& out, bool skipZeros = false);

// Same, restricted to the candidate positions `candidates[0..count)`
// (strictly increasing, each < the length of x): keeps in place the
// min(k, count) candidates of largest |x| (ties towards the lower index),
// still increasing, and returns how many were kept.
std::size_t selectTopKAmong(const float* x, std::uint32_t* candidates, std::size_t count,
                            std::size_t k);

// Where to sample |v| for a threshold estimate: runs of `run` consecutive
// entries starting at offset + j*stride, offset in [0, stride - run]. Runs
// (rather than single entries) let the sample touch 1/run of the cache lines
// a single-entry stride would, which is what sampling costs outside the
// update pass; the runs are still spread evenly over the whole buffer.
struct SamplePlan {
  std::size_t stride = 1;
  std::size_t run = 1;
  std::size_t count = 0;  // samples when offset == 0 (fewer possible for larger offsets)
};

// At least sampleRatio*n samples, and at least enough that the sample's top
// share holds kMinSampleTopK entries at the given density; all of n when
// that is most of it (stride 1, run 1).
SamplePlan planSamples(std::size_t n, double density, double sampleRatio);
constexpr std::size_t kMinSampleTopK = 32;
constexpr std::size_t kSampleRun = 8;

// A random start for a plan's runs, from any 64-bit random number.
std::size_t sampleOffset(const SamplePlan& plan, std::uint64_t random);

// Walks a plan's sample positions in increasing order, so that a pass over
// v in blocks can take each block's samples while it is in cache.
class SampleCursor {
 public:
  SampleCursor(const SamplePlan& plan, std::size_t offset)
      : stride_(plan.stride), run_(plan.run), next_(offset) {}

  // Appends to keys[taken..cap) the magnitude keys of the sample positions
  // below `end` not taken yet. REQUIRES: v holds at least `end` entries.
  void takeBelow(const float* v, std::size_t end, std::uint32_t* keys, std::size_t cap,
                 std::size_t& taken);

 private:
  std::size_t stride_;
  std::size_t run_;
  std::size_t next_;
  std::size_t inRun_ = 0;
};

// Appends to out[count..cap) the indices base+i of the entries of v[0..len)
// with magnitude key >= threshold (threshold >= 1), in increasing order, and
// adds their number to count (also past cap: count says how many there were).
// SIMD compare at the widest level the CPU runs (magnitude_scan.h); cost
// is one read of v unless many entries pass.
void collectAtLeast(const float* v, std::size_t len, std::size_t base, std::uint32_t threshold,
                    std::uint32_t* out, std::size_t cap, std::size_t& count);

// Candidates collected during the update pass with a predicted threshold
// key: when complete (no overflow), every entry with key >= `key` is among
// `indices` (increasing), so thresholds >= key need no scan of v.
struct Prefilter {
  std::uint32_t key = 0;
  const std::uint32_t* indices = nullptr;
  std::size_t count = 0;
  bool complete = false;
};

struct ThresholdConfig {
  double lowerBound = 0.8;  // accept a count >= lowerBound*k ...
  double upperBound = 1.3;  // ... and <= upperBound*k
  int maxAdaptationIters = 10;
};

// How the last select() ended (for tests, logs and benchmarks).
enum class SelectionPath {
  kThreshold,        // count within the bounds; every candidate kept
  kExactCandidates,  // too many candidates: exact top-k among them
  kExactFull,        // exact top-k over the whole buffer (fallback or forced)
  kAllNonzero,       // fewer than lowerBound*k nonzero entries: all of them
};
const char* selectionPathName(SelectionPath path);

struct SelectionStats {
  SelectionPath path = SelectionPath::kThreshold;
  std::uint32_t thresholdKey = 0;  // magnitude key of the last threshold tried
  int scans = 0;                   // full counting scans over the buffer
  int candidateScans = 0;          // counting scans over the prefilter's candidates
  std::size_t prefilterCount = 0;  // candidates the prefilter held (when used)
  std::size_t firstCount = 0;      // entries >= the first (sampled) threshold
};

// DGC's selection of about k entries of largest |v|.
//   1. threshold = the ks-th largest sampled key, ks = ceil(k/n * samples *
//      (lower+upper)/2) (aiming at the middle of the accepted band); a zero
//      threshold becomes the smallest nonzero key (zeros are never selected);
//   2. count the entries >= threshold and collect their indices: from the
//      prefilter's candidates when they cover the threshold, else by one
//      SIMD scan of v;
//   3. count within [lower*k, upper*k]: keep them all. count > upper*k:
//      exact top-k among the collected candidates, or, when there were more
//      than 2*upper*k + 64 to hold, a higher threshold. count < lower*k: a
//      lower threshold, re-estimated from the sample for the missing share
//      (at least lowerBound times lower when the sample has nothing lower).
//      Once a too-high and a too-low threshold are known, the next stays
//      strictly between them (bisection of the keys). After
//      maxAdaptationIters re-estimations: exact top-k over the whole buffer.
// A buffer with fewer nonzero entries than lower*k sends all of them.
class ThresholdSelector {
 public:
  explicit ThresholdSelector(ThresholdConfig config = {}) : config_(config) {}

  // sampleKeys: magnitude keys of the samples (reordered in place).
  // Writes the selection to `out` (strictly increasing indices; capacity
  // reused) and returns its size. prefilter (optional) replaces scans of v
  // for thresholds at or above its key. REQUIRES: 1 <= k <= n.
  std::size_t select(const float* v, std::size_t n, std::size_t k, std::uint32_t* sampleKeys,
                     std::size_t sampleCount, std::vector<std::uint32_t>& out,
                     const Prefilter* prefilter = nullptr);

  const SelectionStats& stats() const { return stats_; }
  const ThresholdConfig& config() const { return config_; }

 private:
  ThresholdConfig config_;
  SelectionStats stats_;
  std::vector<std::uint32_t> heap_;  // scratch of the first estimate
};

}  // namespace hearth::compress
