// hearth/runtime/metrics.h — append-only JSONL metrics file.
//
// MetricsWriter opens `path` for appending (an empty path disables it: write()
// is then a no-op) and writes one JSON object per line, flushed per line so a
// crash loses at most the line being written. Opening failure throws
// std::runtime_error naming the path. Not thread-safe: one writer per thread.
#pragma once

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace hearth {

class MetricsWriter {
 public:
  explicit MetricsWriter(const std::string& path);
  bool enabled() const { return out_.is_open(); }
  void write(const nlohmann::json& record);

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace hearth
