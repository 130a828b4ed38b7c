#include "hearth/compress/inspect.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "hearth/compress/payload.h"

namespace hearth::compress {
namespace {

std::string line(const char* label, const std::string& value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%-18s", label);
  return std::string(buffer) + value + "\n";
}

std::string number(double v, const char* format = "%.6g") {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, v);
  return buffer;
}

}  // namespace

PayloadReport inspectPayload(const std::uint8_t* data, std::size_t size,
                             std::uint64_t expectedNumel) {
  PayloadReport report;
  DecodedPayload p;
  try {
    p = decodePayload(data, size, expectedNumel);
  } catch (const PayloadError& e) {
    report.text = e.what();
    return report;
  }
  report.valid = true;
  const auto& h = p.header;
  const double denseBytes = 4.0 * static_cast<double>(h.numel);
  const double density = h.numel == 0 ? 0.0 : double(h.count) / double(h.numel);
  std::string& t = report.text;
  t += line("codec", codecIdName(h.codec));
  t += line("format", "hearth payload v" + std::to_string(h.version));
  t += line("elements",
            std::to_string(h.numel) + " (dense fp32: " + number(denseBytes, "%.0f") + " bytes)");
  t += line("values", std::to_string(h.count) + " " + valueTypeName(h.valueType) + " (density " +
                          number(100.0 * density, "%.4g") + "%)");
  t += line("indices", std::string(indexEncodingName(h.indexEncoding)) + ", " +
                           std::to_string(p.indexSectionBytes) + " bytes");
  t += line("value section", std::to_string(p.valueSectionBytes) + " bytes");
  t += line(
      "body",
      std::to_string(h.bodyBytes) + " bytes" +
          (h.zstd ? " zstd (" + std::to_string(p.uncompressedBodyBytes) + " uncompressed)" : ""));
  t += line("total", std::to_string(size) + " bytes, " +
                         (size == 0 ? std::string("-")
                                    : number(denseBytes / double(size), "%.1f") +
                                          "x smaller than dense fp32"));
  if (!p.scalars.empty()) {
    std::string scalars;
    for (float s : p.scalars) scalars += (scalars.empty() ? "" : ", ") + number(s);
    t += line("scalars", scalars);
  }
  if (!p.values.empty()) {
    double sum = 0, sumAbs = 0, sumSq = 0;
    float lo = p.values[0], hi = p.values[0];
    for (float v : p.values) {
      sum += v;
      sumAbs += std::fabs(v);
      sumSq += double(v) * v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    const double n = double(p.values.size());
    t += line("value stats", "min " + number(lo) + ", max " + number(hi) + ", mean " +
                                 number(sum / n) + ", mean |v| " + number(sumAbs / n) + ", L2 " +
                                 number(std::sqrt(sumSq)));
  }
  if (!p.indices.empty()) {
    t += line("index range",
              std::to_string(p.indices.front()) + " .. " + std::to_string(p.indices.back()));
  }
  return report;
}

}  // namespace hearth::compress
