#include "dgc_selection.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace hearth::compress {
namespace {

// Radix select over magnitude keys (31 significant bits) in three digits.
constexpr int kDigitShift[3] = {21, 10, 0};
constexpr int kDigitWidth[3] = {10, 11, 10};

struct KthKey {
  std::size_t eligible = 0;  // keys >= minKey
  std::uint32_t key = 0;     // the k-th largest eligible key (valid when eligible > k)
  std::size_t greater = 0;   // eligible keys strictly greater than `key`
};

// keyAt(j) for j < m gives a magnitude key. Finds the k-th largest key among
// those >= minKey; stops after counting when there are at most k of them.
template <class KeyAt>
KthKey findKthLargest(std::size_t m, const KeyAt& keyAt, std::size_t k, std::uint32_t minKey) {
  KthKey result;
  std::array<std::uint32_t, 2048> hist;
  std::uint32_t prefix = 0;
  std::size_t need = k;
  for (int level = 0; level < 3; ++level) {
    const int shift = kDigitShift[level];
    const int highShift = shift + kDigitWidth[level];  // 31 at level 0: always 0
    const std::uint32_t mask = (1u << kDigitWidth[level]) - 1u;
    std::fill(hist.begin(), hist.begin() + mask + 1, 0u);
    for (std::size_t j = 0; j < m; ++j) {
      const std::uint32_t key = keyAt(j);
      if (key < minKey || (key >> highShift) != prefix) continue;
      ++hist[(key >> shift) & mask];
    }
    if (level == 0) {
      for (std::uint32_t b = 0; b <= mask; ++b) result.eligible += hist[b];
      if (result.eligible <= k) return result;
    }
    std::size_t above = 0;
    std::uint32_t bin = mask;
    while (above + hist[bin] < need) above += hist[bin--];
    result.greater += above;
    need -= above;
    prefix = (prefix << kDigitWidth[level]) | bin;
  }
  result.key = prefix;
  return result;
}

// Top k of |x| among keys >= minKey over the whole buffer, into out.
void exactTopK(const float* x, std::size_t n, std::size_t k, std::uint32_t minKey,
               std::vector<std::uint32_t>& out) {
  const auto keyAt = [x](std::size_t i) { return magnitudeKey(x[i]); };
  const KthKey kth = findKthLargest(n, keyAt, k, minKey);
  std::size_t taken = 0;
  if (kth.eligible <= k) {
    out.resize(kth.eligible);
    for (std::size_t i = 0; i < n && taken < kth.eligible; ++i) {
      if (magnitudeKey(x[i]) >= minKey) out[taken++] = static_cast<std::uint32_t>(i);
    }
    return;
  }
  out.resize(k);
  std::size_t ties = k - kth.greater;
  for (std::size_t i = 0; i < n && taken < k; ++i) {
    const std::uint32_t key = magnitudeKey(x[i]);
    if (key > kth.key || (key == kth.key && ties > 0)) {
      if (key == kth.key) --ties;
      out[taken++] = static_cast<std::uint32_t>(i);
    }
  }
}

std::uint32_t lowerKey(std::uint32_t key, double factor) {
  const float lowered = static_cast<float>(keyToMagnitude(key) * factor);
  std::uint32_t next = magnitudeKey(lowered);
  if (next >= key) next = key - 1;
  return std::max<std::uint32_t>(next, 1u);
}

// Replaces the smallest of the min-heap of the r largest keys seen so far.
// REQUIRES: key > heap.front().
void replaceHeapMin(std::vector<std::uint32_t>& heap, std::uint32_t key) {
  std::pop_heap(heap.begin(), heap.end(), std::greater<std::uint32_t>());
  heap.back() = key;
  std::push_heap(heap.begin(), heap.end(), std::greater<std::uint32_t>());
}

// The r-th largest of keys[0..m) (1 <= r <= m) without reordering them: a
// min-heap of the r largest seen. For r << m almost every key is below the
// heap's minimum, so blocks of 16 keys are first checked against it at once
// (keys are < 2^31: signed compares are exact).
std::uint32_t largestKth(const std::uint32_t* keys, std::size_t m, std::size_t r,
                         std::vector<std::uint32_t>& heap) {
  heap.assign(keys, keys + r);
  std::make_heap(heap.begin(), heap.end(), std::greater<std::uint32_t>());
  std::size_t j = r;
#if defined(__SSE2__)
  for (; j + 16 <= m; j += 16) {
    const __m128i least = _mm_set1_epi32(static_cast<int>(heap.front()));
    const auto* p = reinterpret_cast<const __m128i*>(keys + j);
    const __m128i above =
        _mm_or_si128(_mm_or_si128(_mm_cmpgt_epi32(_mm_loadu_si128(p), least),
                                  _mm_cmpgt_epi32(_mm_loadu_si128(p + 1), least)),
                     _mm_or_si128(_mm_cmpgt_epi32(_mm_loadu_si128(p + 2), least),
                                  _mm_cmpgt_epi32(_mm_loadu_si128(p + 3), least)));
    if (_mm_movemask_epi8(above) == 0) continue;
    for (std::size_t q = 0; q < 16; ++q) {
      if (keys[j + q] > heap.front()) replaceHeapMin(heap, keys[j + q]);
    }
  }
#endif
  for (; j < m; ++j) {
    if (keys[j] > heap.front()) replaceHeapMin(heap, keys[j]);
  }
  return heap.front();
}

std::uint32_t raiseKey(std::uint32_t key, double factor) {
  const float raised = static_cast<float>(static_cast<double>(keyToMagnitude(key)) * factor);
  std::uint32_t next = magnitudeKey(raised);
  if (next <= key) next = key + 1;
  return std::min<std::uint32_t>(next, 0x7F800000u);  // at most +Inf
}

}  // namespace

void selectTopKByMagnitude(const float* x, std::size_t n, std::size_t k,
                           std::vector<std::uint32_t>& out, bool skipZeros) {
  if (k == 0 || n == 0) {
    out.clear();
    return;
  }
  exactTopK(x, n, std::min(k, n), skipZeros ? 1u : 0u, out);
}

std::size_t selectTopKAmong(const float* x, std::uint32_t* candidates, std::size_t count,
                            std::size_t k) {
  if (count <= k) return count;
  if (k == 0) return 0;
  const auto keyAt = [x, candidates](std::size_t j) { return magnitudeKey(x[candidates[j]]); };
  const KthKey kth = findKthLargest(count, keyAt, k, 0u);
  std::size_t ties = k - kth.greater;
  std::size_t taken = 0;
  for (std::size_t j = 0; j < count && taken < k; ++j) {
    const std::uint32_t key = keyAt(j);
    if (key > kth.key || (key == kth.key && ties > 0)) {
      if (key == kth.key) --ties;
      candidates[taken++] = candidates[j];
    }
  }
  return taken;
}

SamplePlan planSamples(std::size_t n, double density, double sampleRatio) {
  SamplePlan plan;
  if (n == 0) return plan;
  const double byRatio = std::ceil(sampleRatio * static_cast<double>(n));
  const double byTopK = std::ceil(static_cast<double>(kMinSampleTopK) / density);
  const double wanted = std::max(byRatio, byTopK);
  // Sampling more than half of the buffer buys nothing over reading it all.
  if (wanted * 2.0 >= static_cast<double>(n)) {
    plan.stride = 1;
    plan.count = n;
    return plan;
  }
  // wanted < n/2, so stride >= 2*run: runs never overlap.
  const auto runs = static_cast<std::size_t>(std::ceil(wanted / static_cast<double>(kSampleRun)));
  plan.run = kSampleRun;
  plan.stride = std::max<std::size_t>(2 * kSampleRun, n / runs);
  plan.count = 0;
  for (std::size_t start = 0; start < n; start += plan.stride) {
    plan.count += std::min(plan.run, n - start);
  }
  return plan;
}

std::size_t sampleOffset(const SamplePlan& plan, std::uint64_t random) {
  const std::size_t span = plan.stride - plan.run + 1;
  return span > 1 ? static_cast<std::size_t>(random % span) : 0;
}

void SampleCursor::takeBelow(const float* v, std::size_t end, std::uint32_t* keys, std::size_t cap,
                             std::size_t& taken) {
  // Locals, so that the stores to keys cannot alias the loop state.
  std::size_t next = next_;
  std::size_t t = taken;
  if (run_ == kSampleRun && inRun_ == 0) {  // whole runs: a fixed-length copy each
    for (; next + kSampleRun <= end && t + kSampleRun <= cap; next += stride_) {
      for (std::size_t r = 0; r < kSampleRun; ++r) keys[t + r] = magnitudeKey(v[next + r]);
      t += kSampleRun;
    }
  }
  while (t < cap && next < end) {  // a partial run, or run 1
    const std::size_t len = std::min({run_ - inRun_, end - next, cap - t});
    for (std::size_t r = 0; r < len; ++r) keys[t + r] = magnitudeKey(v[next + r]);
    t += len;
    next += len;
    inRun_ += len;
    if (inRun_ == run_) {
      inRun_ = 0;
      next += stride_ - run_;
    }
  }
  next_ = next;
  taken = t;
}

const char* selectionPathName(SelectionPath path) {
  switch (path) {
    case SelectionPath::kThreshold:
      return "threshold";
    case SelectionPath::kExactCandidates:
      return "exact-candidates";
    case SelectionPath::kExactFull:
      return "exact-full";
    case SelectionPath::kAllNonzero:
      return "all-nonzero";
  }
  return "?";
}

std::size_t ThresholdSelector::select(const float* v, std::size_t n, std::size_t k,
                                      std::uint32_t* sampleKeys, std::size_t sampleCount,
                                      std::vector<std::uint32_t>& out, const Prefilter* prefilter) {
  stats_ = SelectionStats{};
  const double lower = config_.lowerBound * static_cast<double>(k);
  const double upper = config_.upperBound * static_cast<double>(k);
  const double aim = 0.5 * (config_.lowerBound + config_.upperBound);

  const auto exactFull = [&](std::uint32_t minKey) {
    exactTopK(v, n, k, minKey, out);
    stats_.path = out.size() < k ? SelectionPath::kAllNonzero : SelectionPath::kExactFull;
    return out.size();
  };
  // The sample is everything, or every nonzero entry is wanted.
  if (sampleCount == 0 || sampleCount >= n || k >= n) return exactFull(1u);

  // Counts entries >= threshold and collects the first `cap` of them: from
  // the prefilter's candidates when they are complete for this threshold,
  // else by a full scan of v.
  const auto scan = [&](std::uint32_t threshold, std::size_t cap) {
    std::size_t count = 0;
    if (prefilter != nullptr && prefilter->complete && threshold >= prefilter->key) {
      stats_.prefilterCount = prefilter->count;
      ++stats_.candidateScans;
      for (std::size_t j = 0; j < prefilter->count; ++j) {
        const std::uint32_t i = prefilter->indices[j];
        if (magnitudeKey(v[i]) >= threshold) {
          if (count < cap) out[count] = i;
          ++count;
        }
      }
      return count;
    }
    ++stats_.scans;
    collectAtLeast(v, n, 0, threshold, out.data(), cap, count);
    return count;
  };

  std::size_t ks = 0;  // the sample rank of the current threshold
  // The key at sample rank r (1 = largest; r is rounded up and clamped to
  // the sample): a min-heap pass for the small ranks DGC's densities give,
  // else a partition of the whole sample.
  const auto sampleAt = [&](double r) {
    ks = static_cast<std::size_t>(std::clamp(std::ceil(r), 1.0, static_cast<double>(sampleCount)));
    if (ks <= sampleCount / 64) {
      return std::max<std::uint32_t>(largestKth(sampleKeys, sampleCount, ks, heap_), 1u);
    }
    std::nth_element(sampleKeys, sampleKeys + ks - 1, sampleKeys + sampleCount,
                     std::greater<std::uint32_t>());
    return std::max<std::uint32_t>(sampleKeys[ks - 1], 1u);
  };
  std::uint32_t threshold = sampleAt(static_cast<double>(k) / static_cast<double>(n) * aim *
                                     static_cast<double>(sampleCount));

  const std::size_t cap = std::min<std::size_t>(
      n, std::max<std::size_t>(static_cast<std::size_t>(2.0 * upper) + 64, 1024));
  if (out.size() < cap) out.resize(cap);

  // Thresholds known to give more candidates than fit (tooMany) and fewer
  // than lower*k (tooFew); 0 = not known yet. Later thresholds stay strictly
  // between them.
  std::uint32_t tooMany = 0;
  std::uint32_t tooFew = 0;
  for (int iter = 0;; ++iter) {
    stats_.thresholdKey = threshold;
    const std::size_t count = scan(threshold, cap);
    if (iter == 0) stats_.firstCount = count;
    const double c = static_cast<double>(count);
    // The sample rank that should give about aim*k entries, assuming counts
    // scale with the rank.
    const double rescaled =
        static_cast<double>(ks) * aim * static_cast<double>(k) / std::max(c, 1.0);
    std::uint32_t next;
    if (c > upper) {
      if (count <= cap) {
        stats_.path = SelectionPath::kExactCandidates;
        out.resize(selectTopKAmong(v, out.data(), count, k));
        return out.size();
      }
      if (iter >= config_.maxAdaptationIters) return exactFull(threshold);
      tooMany = threshold;
      next = sampleAt(std::floor(rescaled));
      if (next <= threshold) next = raiseKey(threshold, 1.0 / config_.lowerBound);
    } else if (c >= lower) {
      stats_.path = SelectionPath::kThreshold;
      out.resize(count);
      return count;
    } else if (threshold == 1u) {  // every nonzero entry is already in
      stats_.path = SelectionPath::kAllNonzero;
      out.resize(count);
      return count;
    } else {
      if (iter >= config_.maxAdaptationIters) return exactFull(1u);
      tooFew = threshold;
      next = sampleAt(rescaled);
      if (next >= threshold) next = lowerKey(threshold, config_.lowerBound);
    }
    if (tooMany != 0 && tooFew != 0 && (next <= tooMany || next >= tooFew)) {
      // The estimate left the bracket: bisect the keys (about the geometric
      // mean of the magnitudes).
      if (tooFew - tooMany <= 1) return exactFull(tooMany);  // one huge tie
      next = tooMany + (tooFew - tooMany) / 2;
    }
    threshold = next;
  }
}

}  // namespace hearth::compress
