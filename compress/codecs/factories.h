// factories.h (internal) — one factory per built-in codec; registry.cpp maps
// names to them. Each validates its JSON parameters (CodecParams) and throws
// std::invalid_argument naming the codec and parameter on bad input.
#pragma once

#include <cstddef>
#include <memory>

#include <nlohmann/json.hpp>

#include "hearth/compress/compressor.h"

namespace hearth::compress {

std::unique_ptr<Compressor> makeNoneCompressor(const nlohmann::json& params, std::size_t numel);
std::unique_ptr<Compressor> makeFp16Compressor(const nlohmann::json& params, std::size_t numel);
std::unique_ptr<Compressor> makeTopKCompressor(const nlohmann::json& params, std::size_t numel);
std::unique_ptr<Compressor> makeRandomKCompressor(const nlohmann::json& params, std::size_t numel);
std::unique_ptr<Compressor> makeQsgdCompressor(const nlohmann::json& params, std::size_t numel);
std::unique_ptr<Compressor> makeSignSgdCompressor(const nlohmann::json& params, std::size_t numel);
std::unique_ptr<Compressor> makeInt8Compressor(const nlohmann::json& params, std::size_t numel);
std::unique_ptr<Compressor> makePowerSgdCompressor(const nlohmann::json& params, std::size_t numel);
std::unique_ptr<Compressor> makeDgcCompressor(const nlohmann::json& params, std::size_t numel);

}  // namespace hearth::compress
