#include "hearth/runtime/metrics.h"

#include <stdexcept>

namespace hearth {

MetricsWriter::MetricsWriter(const std::string& path) : path_(path) {
  if (path.empty()) return;
  out_.open(path, std::ios::out | std::ios::app);
  if (!out_) throw std::runtime_error("metrics: cannot open '" + path + "' for writing");
}

void MetricsWriter::write(const nlohmann::json& record) {
  if (!out_.is_open()) return;
  out_ << record.dump() << '\n';
  out_.flush();
  if (!out_) throw std::runtime_error("metrics: write to '" + path_ + "' failed (disk full?)");
}

}  // namespace hearth
