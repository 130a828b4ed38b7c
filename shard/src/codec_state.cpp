// DGC state inside ZeRO to and from checkpoint bytes (codec_state.h).
#include "codec_state.h"

#include <cstring>
#include <stdexcept>
#include <string>

namespace hearth::shard_detail {
namespace {

constexpr char kMagic[4] = {'H', 'D', 'C', 'S'};
constexpr std::uint32_t kVersion = 1;

template <typename T>
void put(std::vector<std::uint8_t>& out, const T& value) {
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(&value);
  out.insert(out.end(), bytes, bytes + sizeof(T));
}

void putFloats(std::vector<std::uint8_t>& out, const std::vector<float>& values) {
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(values.data());
  out.insert(out.end(), bytes, bytes + values.size() * sizeof(float));
}

class Reader {
 public:
  explicit Reader(const std::vector<std::uint8_t>& bytes) : bytes_(bytes) {}
  template <typename T>
  T get(const char* what) {
    need(sizeof(T), what);
    T value;
    std::memcpy(&value, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  std::vector<float> floats(std::uint64_t count, const char* what) {
    if (count > (bytes_.size() - at_) / sizeof(float)) need(bytes_.size() + 1, what);
    std::vector<float> values(count);
    std::memcpy(values.data(), bytes_.data() + at_, count * sizeof(float));
    at_ += count * sizeof(float);
    return values;
  }
  bool done() const { return at_ == bytes_.size(); }

 private:
  void need(std::size_t n, const char* what) const {
    if (n > bytes_.size() - at_) {
      throw std::invalid_argument(std::string("codec state truncated at ") + what);
    }
  }
  const std::vector<std::uint8_t>& bytes_;
  std::size_t at_ = 0;
};

}  // namespace

std::vector<std::uint8_t> encodeCodecState(
    const std::vector<std::unique_ptr<compress::DgcSparsifier>>& sparsifiers) {
  std::vector<std::uint8_t> out(kMagic, kMagic + 4);
  put(out, kVersion);
  put(out, static_cast<std::uint64_t>(sparsifiers.size()));
  for (const auto& s : sparsifiers) {
    put(out, static_cast<std::uint64_t>(s->numel()));
    put(out, static_cast<std::uint64_t>(s->momentum().size()));
    put(out, static_cast<std::uint64_t>(s->velocity().size()));
    putFloats(out, s->momentum());
    putFloats(out, s->velocity());
  }
  return out;
}

std::vector<BucketCodecState> decodeCodecState(
    const std::vector<std::uint8_t>& bytes,
    const std::vector<std::unique_ptr<compress::DgcSparsifier>>& sparsifiers) {
  Reader in(bytes);
  char magic[4];
  for (char& c : magic) c = static_cast<char>(in.get<std::uint8_t>("magic"));
  if (std::memcmp(magic, kMagic, 4) != 0) throw std::invalid_argument("codec state: bad magic");
  const auto version = in.get<std::uint32_t>("version");
  if (version != kVersion) {
    throw std::invalid_argument("codec state: version " + std::to_string(version) +
                                " (this build reads " + std::to_string(kVersion) + ")");
  }
  const auto count = in.get<std::uint64_t>("bucket count");
  if (count != sparsifiers.size()) {
    throw std::invalid_argument("codec state: " + std::to_string(count) +
                                " buckets, the engine has " + std::to_string(sparsifiers.size()) +
                                " (another bucket_cap_mb or model?)");
  }
  std::vector<BucketCodecState> state(sparsifiers.size());
  for (std::size_t b = 0; b < sparsifiers.size(); ++b) {
    const auto numel = in.get<std::uint64_t>("bucket size");
    const auto uSize = in.get<std::uint64_t>("momentum size");
    const auto vSize = in.get<std::uint64_t>("velocity size");
    const auto& s = *sparsifiers[b];
    if (numel != s.numel() || uSize != s.momentum().size() || vSize != s.velocity().size()) {
      throw std::invalid_argument("codec state: bucket " + std::to_string(b) +
                                  " has other sizes than the engine's (numel " +
                                  std::to_string(numel) + " vs " + std::to_string(s.numel()) +
                                  "; another bucket_cap_mb or codec momentum?)");
    }
    state[b].momentum = in.floats(uSize, "momentum");
    state[b].velocity = in.floats(vSize, "velocity");
  }
  if (!in.done()) throw std::invalid_argument("codec state: trailing bytes");
  return state;
}

void accumulateCodecState(std::vector<BucketCodecState>& sum,
                          const std::vector<BucketCodecState>& more) {
  for (std::size_t b = 0; b < sum.size(); ++b) {
    for (std::size_t i = 0; i < sum[b].momentum.size(); ++i)
      sum[b].momentum[i] += more[b].momentum[i];
    for (std::size_t i = 0; i < sum[b].velocity.size(); ++i)
      sum[b].velocity[i] += more[b].velocity[i];
  }
}

void scaleCodecState(std::vector<BucketCodecState>& state, float factor) {
  for (auto& bucket : state) {
    for (float& x : bucket.momentum) x *= factor;
    for (float& x : bucket.velocity) x *= factor;
  }
}

void installCodecState(std::vector<BucketCodecState> state,
                       std::vector<std::unique_ptr<compress::DgcSparsifier>>& sparsifiers) {
  for (std::size_t b = 0; b < sparsifiers.size(); ++b) {
    sparsifiers[b]->mutableMomentum() = std::move(state[b].momentum);
    sparsifiers[b]->mutableVelocity() = std::move(state[b].velocity);
  }
}

}  // namespace hearth::shard_detail
