// Schema-driven validation of hearth's JSON configuration.
#include "hearth/runtime/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

namespace hearth {
namespace {

const char* kindName(ConfigKind kind) {
  switch (kind) {
    case ConfigKind::kInt:
      return "an integer";
    case ConfigKind::kFloat:
      return "a number";
    case ConfigKind::kBool:
      return "a boolean";
    case ConfigKind::kString:
      return "a string";
    case ConfigKind::kFloatList:
      return "a list of numbers";
    case ConfigKind::kObject:
      return "a JSON object";
  }
  return "?";
}

const char* kindShortName(ConfigKind kind) {
  switch (kind) {
    case ConfigKind::kInt:
      return "int";
    case ConfigKind::kFloat:
      return "float";
    case ConfigKind::kBool:
      return "bool";
    case ConfigKind::kString:
      return "string";
    case ConfigKind::kFloatList:
      return "float list";
    case ConfigKind::kObject:
      return "object";
  }
  return "?";
}

std::size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string unknownKeyMessage(const ConfigSchema& schema, const std::string& path) {
  std::string message = "config: unknown key '" + path + "'";
  const std::string hint = schema.suggest(path);
  if (!hint.empty()) message += " (did you mean '" + hint + "'?)";
  return message;
}

// Checks one value against its key; returns the value to store.
nlohmann::json validated(const ConfigKey& key, const nlohmann::json& value) {
  auto fail = [&](const std::string& why) {
    throw ConfigError("config: key '" + key.path + "' " + why + ", got " + value.dump());
  };
  auto checkRange = [&](double v) {
    if (!std::isfinite(v)) fail("must be finite");
    if (key.min && v < *key.min) {
      std::ostringstream os;
      os << "must be >= " << *key.min;
      fail(os.str());
    }
    if (key.max && v > *key.max) {
      std::ostringstream os;
      os << "must be <= " << *key.max;
      fail(os.str());
    }
  };
  switch (key.kind) {
    case ConfigKind::kInt:
      if (!value.is_number_integer()) fail("must be " + std::string(kindName(key.kind)));
      checkRange(static_cast<double>(value.get<std::int64_t>()));
      return value;
    case ConfigKind::kFloat:
      if (!value.is_number()) fail("must be " + std::string(kindName(key.kind)));
      checkRange(value.get<double>());
      return value.get<double>();
    case ConfigKind::kBool:
      if (!value.is_boolean()) fail("must be true or false");
      return value;
    case ConfigKind::kString:
      if (!value.is_string()) fail("must be " + std::string(kindName(key.kind)));
      if (!key.choices.empty() && std::find(key.choices.begin(), key.choices.end(),
                                            value.get<std::string>()) == key.choices.end()) {
        std::string allowed;
        for (const auto& c : key.choices) allowed += (allowed.empty() ? "" : ", ") + c;
        fail("must be one of {" + allowed + "}");
      }
      return value;
    case ConfigKind::kFloatList: {
      if (!value.is_array()) fail("must be " + std::string(kindName(key.kind)));
      if (key.listSize != 0 && value.size() != key.listSize) {
        fail("must have " + std::to_string(key.listSize) + " elements");
      }
      for (const auto& element : value) {
        if (!element.is_number()) fail("must contain only numbers");
        checkRange(element.get<double>());
      }
      return value;
    }
    case ConfigKind::kObject:
      if (!value.is_object()) fail("must be " + std::string(kindName(key.kind)));
      return value;
  }
  return value;
}

// Walks a user document, validating every leaf into `flat`.
void flatten(const ConfigSchema& schema, const nlohmann::json& node, const std::string& prefix,
             nlohmann::json& flat) {
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string path = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (const ConfigKey* key = schema.find(path)) {
      flat[path] = validated(*key, it.value());
    } else if (schema.isSection(path)) {
      if (!it.value().is_object()) {
        throw ConfigError("config: key '" + path + "' is a section and must be an object, got " +
                          it.value().dump());
      }
      flatten(schema, it.value(), path, flat);
    } else {
      throw ConfigError(unknownKeyMessage(schema, path));
    }
  }
}

nlohmann::json::json_pointer jsonPointer(std::string dottedPath) {
  std::replace(dottedPath.begin(), dottedPath.end(), '.', '/');
  return nlohmann::json::json_pointer("/" + dottedPath);
}

std::string lastComponent(const std::string& path) {
  const auto dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

void applyOverride(const ConfigSchema& schema, const std::string& assignment,
                   nlohmann::json& flat) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError("config: override '" + assignment + "' must look like key=value");
  }
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (const ConfigKey* key = schema.find(path)) {
    if (value.is_discarded() || (key->kind == ConfigKind::kString && !value.is_string())) {
      value = text;  // bare words are strings
    }
    flat[path] = validated(*key, value);
    return;
  }
  if (value.is_discarded()) value = text;
  // A path inside a free-form object key: compression.params.density=0.01.
  for (auto dot = path.rfind('.'); dot != std::string::npos && dot > 0;
       dot = path.rfind('.', dot - 1)) {
    const ConfigKey* key = schema.find(path.substr(0, dot));
    if (key != nullptr && key->kind == ConfigKind::kObject) {
      nlohmann::json object = flat.contains(key->path) ? flat[key->path] : key->defaultValue;
      object[jsonPointer(path.substr(dot + 1))] = value;
      flat[key->path] = validated(*key, object);
      return;
    }
    if (dot == 0) break;
  }
  throw ConfigError(unknownKeyMessage(schema, path));
}

}  // namespace

ConfigSchema& ConfigSchema::add(ConfigKey key) {
  if (find(key.path) != nullptr) {
    throw std::logic_error("ConfigSchema: duplicate key " + key.path);
  }
  keys_.push_back(std::move(key));
  return *this;
}

ConfigSchema& ConfigSchema::setDefault(const std::string& path, nlohmann::json value) {
  const auto key =
      std::find_if(keys_.begin(), keys_.end(), [&](const ConfigKey& k) { return k.path == path; });
  if (key == keys_.end()) throw ConfigError(unknownKeyMessage(*this, path));
  key->defaultValue = validated(*key, value);
  return *this;
}

const ConfigKey* ConfigSchema::find(const std::string& path) const {
  for (const auto& key : keys_) {
    if (key.path == path) return &key;
  }
  return nullptr;
}

bool ConfigSchema::isSection(const std::string& path) const {
  const std::string prefix = path + ".";
  return std::any_of(keys_.begin(), keys_.end(),
                     [&](const ConfigKey& k) { return k.path.rfind(prefix, 0) == 0; });
}

std::string ConfigSchema::suggest(const std::string& path) const {
  std::string best;
  std::size_t bestDistance = std::max<std::size_t>(3, path.size() / 3) + 1;
  for (const auto& key : keys_) {
    // A correctly spelled key in the wrong section is the best suggestion.
    if (lastComponent(path) == lastComponent(key.path)) return key.path;
    const std::size_t d = editDistance(path, key.path);
    if (d < bestDistance) {
      bestDistance = d;
      best = key.path;
    }
  }
  return best;
}

std::string ConfigSchema::toMarkdown() const {
  std::ostringstream os;
  os << "| key | type | default | description |\n|---|---|---|---|\n";
  for (const auto& key : keys_) {
    os << "| `" << key.path << "` | " << kindShortName(key.kind);
    if (!key.choices.empty()) {
      os << " (";
      for (std::size_t i = 0; i < key.choices.size(); ++i) os << (i ? ", " : "") << key.choices[i];
      os << ")";
    }
    os << " | `" << key.defaultValue.dump() << "` | " << key.doc << " |\n";
  }
  return os.str();
}

Config Config::load(const ConfigSchema& schema, const std::string& jsonPath,
                    const std::vector<std::string>& overrides) {
  nlohmann::json document = nlohmann::json::object();
  if (!jsonPath.empty()) {
    std::ifstream in(jsonPath);
    if (!in) throw ConfigError("config: cannot open file '" + jsonPath + "'");
    try {
      document = nlohmann::json::parse(in);
    } catch (const nlohmann::json::parse_error& e) {
      throw ConfigError("config: file '" + jsonPath + "' is not valid JSON (byte " +
                        std::to_string(e.byte) + ")");
    }
  }
  return fromJson(schema, document, overrides);
}

Config Config::fromJson(const ConfigSchema& schema, const nlohmann::json& document,
                        const std::vector<std::string>& overrides) {
  if (!document.is_object()) {
    throw ConfigError("config: the top level must be a JSON object, got " + document.dump());
  }
  nlohmann::json flat = nlohmann::json::object();
  flatten(schema, document, "", flat);
  for (const auto& assignment : overrides) applyOverride(schema, assignment, flat);

  Config config;
  config.schema_ = schema;
  config.effective_ = nlohmann::json::object();
  for (const auto& key : schema.keys()) {
    const nlohmann::json value = flat.contains(key.path) ? flat[key.path] : key.defaultValue;
    config.flat_[key.path] = value;
    config.effective_[jsonPointer(key.path)] = value;
  }
  return config;
}

const nlohmann::json& Config::at(const std::string& path, ConfigKind kind) const {
  const ConfigKey* key = schema_.find(path);
  if (key == nullptr) throw ConfigError("config: no key '" + path + "' in the schema");
  if (key->kind != kind) {
    throw ConfigError("config: key '" + path + "' is " + kindName(key->kind) + ", not " +
                      kindName(kind));
  }
  return flat_.at(path);
}

std::int64_t Config::getInt(const std::string& path) const {
  return at(path, ConfigKind::kInt).get<std::int64_t>();
}
double Config::getFloat(const std::string& path) const {
  return at(path, ConfigKind::kFloat).get<double>();
}
bool Config::getBool(const std::string& path) const {
  return at(path, ConfigKind::kBool).get<bool>();
}
std::string Config::getString(const std::string& path) const {
  return at(path, ConfigKind::kString).get<std::string>();
}
nlohmann::json Config::getObject(const std::string& path) const {
  return at(path, ConfigKind::kObject);
}

std::vector<double> Config::getFloatList(const std::string& path) const {
  return at(path, ConfigKind::kFloatList).get<std::vector<double>>();
}

}  // namespace hearth
