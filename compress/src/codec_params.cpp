#include "codec_params.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace hearth::compress {

CodecParams::CodecParams(std::string codec, const nlohmann::json& params)
    : codec_(std::move(codec)), params_(params.is_null() ? nlohmann::json::object() : params) {
  if (!params_.is_object()) {
    throw std::invalid_argument("codec '" + codec_ + "': parameters must be a JSON object, got " +
                                params_.dump());
  }
}

const nlohmann::json* CodecParams::find(const std::string& key) {
  read_.insert(key);
  auto it = params_.find(key);
  return it == params_.end() ? nullptr : &*it;
}

void CodecParams::fail(const std::string& key, const std::string& why) const {
  throw std::invalid_argument("codec '" + codec_ + "': parameter '" + key + "' " + why);
}

double CodecParams::number(const std::string& key, double fallback, double min, double max) {
  const auto* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_number()) fail(key, "must be a number, got " + v->dump());
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < min || x > max) {
    std::ostringstream os;
    os << "must be in [" << min << ", " << max << "], got " << v->dump();
    fail(key, os.str());
  }
  return x;
}

std::int64_t CodecParams::integer(const std::string& key, std::int64_t fallback, std::int64_t min,
                                  std::int64_t max) {
  const auto* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_number_integer()) fail(key, "must be an integer, got " + v->dump());
  const auto x = v->get<std::int64_t>();
  if (x < min || x > max) {
    fail(key,
         "must be in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + v->dump());
  }
  return x;
}

bool CodecParams::boolean(const std::string& key, bool fallback) {
  const auto* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) fail(key, "must be true or false, got " + v->dump());
  return v->get<bool>();
}

std::string CodecParams::text(const std::string& key, const std::string& fallback,
                              const std::vector<std::string>& choices) {
  const auto* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_string()) fail(key, "must be a string, got " + v->dump());
  const auto s = v->get<std::string>();
  if (!choices.empty()) {
    bool ok = false;
    std::string allowed;
    for (const auto& c : choices) {
      ok = ok || c == s;
      allowed += (allowed.empty() ? "" : ", ") + c;
    }
    if (!ok) fail(key, "must be one of {" + allowed + "}, got " + v->dump());
  }
  return s;
}

std::vector<double> CodecParams::numbers(const std::string& key,
                                         const std::vector<double>& fallback, double min,
                                         double max) {
  const auto* v = find(key);
  if (v == nullptr) return fallback;
  if (!v->is_array() || v->empty()) fail(key, "must be a non-empty list of numbers");
  std::vector<double> out;
  for (const auto& e : *v) {
    if (!e.is_number() || !std::isfinite(e.get<double>()) || e.get<double>() < min ||
        e.get<double>() > max) {
      std::ostringstream os;
      os << "must contain numbers in [" << min << ", " << max << "], got " << v->dump();
      fail(key, os.str());
    }
    out.push_back(e.get<double>());
  }
  return out;
}

void CodecParams::finish() const {
  for (auto it = params_.begin(); it != params_.end(); ++it) {
    if (read_.count(it.key()) == 0) {
      std::string known;
      for (const auto& k : read_) known += (known.empty() ? "" : ", ") + k;
      throw std::invalid_argument("codec '" + codec_ + "': unknown parameter '" + it.key() +
                                  "' (known: " + known + ")");
    }
  }
}

}  // namespace hearth::compress
