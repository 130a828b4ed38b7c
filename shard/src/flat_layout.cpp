// FlatLayout: offsets, padding and shard ranges (see flat_layout.h).
#include "hearth/shard/flat_layout.h"

#include <algorithm>
#include <stdexcept>

namespace hearth {
namespace {

std::size_t roundUp(std::size_t value, std::size_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

}  // namespace

FlatRange FlatRange::intersect(FlatRange other) const {
  const std::size_t l = std::max(lo, other.lo);
  const std::size_t h = std::min(hi, other.hi);
  return h > l ? FlatRange{l, h} : FlatRange{h, h};
}

FlatLayout::FlatLayout(const std::vector<std::string>& names,
                       const std::vector<std::vector<std::int64_t>>& shapes, int worldSize,
                       std::size_t alignElements)
    : worldSize_(worldSize), align_(alignElements) {
  if (names.size() != shapes.size()) {
    throw std::invalid_argument("FlatLayout: " + std::to_string(names.size()) + " names but " +
                                std::to_string(shapes.size()) + " shapes");
  }
  if (worldSize < 1) {
    throw std::invalid_argument("FlatLayout: world size must be >= 1, got " +
                                std::to_string(worldSize));
  }
  if (alignElements < 1) throw std::invalid_argument("FlatLayout: alignment must be >= 1");
  entries_.reserve(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    std::size_t numel = 1;
    for (std::int64_t dim : shapes[i]) {
      if (dim < 0) {
        throw std::invalid_argument("FlatLayout: parameter '" + names[i] +
                                    "' has a negative dimension");
      }
      numel *= static_cast<std::size_t>(dim);
    }
    entries_.push_back(FlatEntry{names[i], shapes[i], numel_, numel});
    numel_ += numel;
  }
  padded_ =
      roundUp(std::max<std::size_t>(numel_, 1), static_cast<std::size_t>(worldSize_) * align_);
}

FlatRange FlatLayout::shardRange(int rank) const {
  if (rank < 0 || rank >= worldSize_) {
    throw std::invalid_argument("FlatLayout: rank " + std::to_string(rank) +
                                " is not in a world of " + std::to_string(worldSize_));
  }
  const std::size_t s = shardNumel();
  return FlatRange{static_cast<std::size_t>(rank) * s, static_cast<std::size_t>(rank + 1) * s};
}

FlatRange FlatLayout::dataRange(int rank) const {
  return shardRange(rank).intersect(FlatRange{0, numel_});
}

std::vector<std::size_t> FlatLayout::shardBounds() const {
  return shardBoundsWithin(FlatRange{0, padded_});
}

std::vector<std::size_t> FlatLayout::shardBoundsWithin(FlatRange window) const {
  std::vector<std::size_t> bounds(static_cast<std::size_t>(worldSize_) + 1);
  const std::size_t s = shardNumel();
  for (int r = 0; r <= worldSize_; ++r) {
    const std::size_t edge = static_cast<std::size_t>(r) * s;
    bounds[static_cast<std::size_t>(r)] = std::clamp(edge, window.lo, window.hi) - window.lo;
  }
  return bounds;
}

FlatLayout FlatLayout::withWorldSize(int worldSize) const {
  std::vector<std::string> names;
  std::vector<std::vector<std::int64_t>> shapes;
  for (const FlatEntry& e : entries_) {
    names.push_back(e.name);
    shapes.push_back(e.shape);
  }
  return FlatLayout(names, shapes, worldSize, align_);
}

nlohmann::json FlatLayout::toJson() const {
  nlohmann::json params = nlohmann::json::array();
  for (const FlatEntry& e : entries_) params.push_back({{"name", e.name}, {"shape", e.shape}});
  return {{"world_size", worldSize_},
          {"align", align_},
          {"numel", numel_},
          {"padded_numel", padded_},
          {"parameters", params}};
}

FlatLayout FlatLayout::fromJson(const nlohmann::json& json) {
  try {
    std::vector<std::string> names;
    std::vector<std::vector<std::int64_t>> shapes;
    for (const auto& p : json.at("parameters")) {
      names.push_back(p.at("name").get<std::string>());
      shapes.push_back(p.at("shape").get<std::vector<std::int64_t>>());
    }
    FlatLayout layout(names, shapes, json.at("world_size").get<int>(),
                      json.at("align").get<std::size_t>());
    if (layout.numel() != json.at("numel").get<std::size_t>() ||
        layout.paddedNumel() != json.at("padded_numel").get<std::size_t>()) {
      throw std::invalid_argument("sizes do not match its parameter shapes");
    }
    return layout;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("FlatLayout: malformed layout: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("FlatLayout: invalid layout: ") + e.what());
  }
}

bool FlatLayout::sameParameters(const FlatLayout& other) const {
  if (entries_.size() != other.entries_.size()) return false;
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].name != other.entries_[i].name ||
        entries_[i].shape != other.entries_[i].shape) {
      return false;
    }
  }
  return true;
}

}  // namespace hearth
