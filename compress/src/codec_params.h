// codec_params.h (internal) — reads a codec's JSON parameter object with
// defaults and range checks, and rejects parameters nobody read.
//
//   CodecParams p("dgc", json);
//   double ratio = p.number("density", 0.001, 1e-6, 1.0);
//   p.finish();  // throws if json had keys that were never read
//
// Every error is std::invalid_argument with one line naming the codec and the
// parameter. Not thread-safe (one reader per construction).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth::compress {

class CodecParams {
 public:
  CodecParams(std::string codec, const nlohmann::json& params);

  double number(const std::string& key, double fallback, double min, double max);
  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min,
                       std::int64_t max);
  bool boolean(const std::string& key, bool fallback);
  std::string text(const std::string& key, const std::string& fallback,
                   const std::vector<std::string>& choices);
  std::vector<double> numbers(const std::string& key, const std::vector<double>& fallback,
                              double min, double max);
  void finish() const;

 private:
  const nlohmann::json* find(const std::string& key);
  [[noreturn]] void fail(const std::string& key, const std::string& why) const;

  std::string codec_;
  nlohmann::json params_;
  std::set<std::string> read_;
};

}  // namespace hearth::compress
