// hearth/compress/registry.h — codecs by name, so config files and benchmarks
// pick them with a string.
//
// makeCompressor("dgc", params, numel) builds a compressor for a buffer of
// `numel` elements. `params` is the codec's JSON object of parameters (may be
// empty: defaults); unknown parameters or bad values throw
// std::invalid_argument with one line naming the codec and the parameter.
// An unknown name throws std::invalid_argument listing the known names.
// Thread-safe (the registry is built once, on first use).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hearth/compress/compressor.h"

namespace hearth::compress {

using CompressorFactory =
    std::function<std::unique_ptr<Compressor>(const nlohmann::json& params, std::size_t numel)>;

struct CodecInfo {
  std::string name;
  std::string description;
  CompressorFactory factory;
};

// The built-in codecs: none, fp16, topk, randomk, qsgd, signsgd, int8,
// powersgd, dgc.
const std::vector<CodecInfo>& codecs();
std::vector<std::string> codecNames();
std::unique_ptr<Compressor> makeCompressor(const std::string& name, const nlohmann::json& params,
                                           std::size_t numel);

}  // namespace hearth::compress
