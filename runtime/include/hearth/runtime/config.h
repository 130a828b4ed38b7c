// hearth/runtime/config.h — validated JSON configuration with a schema.
//
// A ConfigSchema lists every accepted key (dotted path such as
// "optimizer.params.lr"), its type, default, allowed range or choices, and a
// one-line description. Config::load() reads a JSON file, applies command-line
// overrides ("key=value", the value parsed as JSON, else taken as a string),
// rejects unknown keys (suggesting the closest known one), wrong types and
// out-of-range values with a ConfigError whose what() is one line naming the
// key, and fills in defaults. The schema also renders the key reference in
// Markdown, so docs and validation cannot drift apart.
//
// Thread-safety: a loaded Config is immutable and safe to read from any thread.
// Nothing here blocks except reading the file.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth {

// Bad configuration. what() is a single line naming the offending key or file.
class ConfigError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// kObject: a free-form JSON object validated by its consumer (e.g. a codec's
// parameters); overrides set it as a whole (key={"a":1}).
enum class ConfigKind { kInt, kFloat, kBool, kString, kFloatList, kObject };

struct ConfigKey {
  std::string path;  // dotted, e.g. "communication.bucket_cap_mb"
  ConfigKind kind = ConfigKind::kString;
  nlohmann::json defaultValue;
  std::string doc;
  std::optional<double> min;         // numeric kinds: inclusive lower bound
  std::optional<double> max;         // numeric kinds: inclusive upper bound
  std::vector<std::string> choices;  // kString: allowed values (empty = any)
  std::size_t listSize = 0;          // kFloatList: required length (0 = any)
};

class ConfigSchema {
 public:
  // REQUIRES: path not yet present, and no key is a prefix section of another.
  ConfigSchema& add(ConfigKey key);
  // Replaces the default of an existing key, e.g. to tune the engine's
  // defaults for one program. The value is validated like a configured one;
  // an unknown path or a bad value throws ConfigError naming the key.
  ConfigSchema& setDefault(const std::string& path, nlohmann::json value);
  const ConfigKey* find(const std::string& path) const;
  bool isSection(const std::string& path) const;
  const std::vector<ConfigKey>& keys() const { return keys_; }
  // Closest known key by edit distance, or "" when nothing is close.
  std::string suggest(const std::string& path) const;
  // A Markdown table of every key: path, type, default, description.
  std::string toMarkdown() const;

 private:
  std::vector<ConfigKey> keys_;
};

class Config {
 public:
  // Reads `jsonPath` (may be empty for "defaults only") and applies overrides.
  // Throws ConfigError on any problem.
  static Config load(const ConfigSchema& schema, const std::string& jsonPath,
                     const std::vector<std::string>& overrides = {});
  // Same, from an in-memory JSON document.
  static Config fromJson(const ConfigSchema& schema, const nlohmann::json& document,
                         const std::vector<std::string>& overrides = {});

  std::int64_t getInt(const std::string& path) const;
  double getFloat(const std::string& path) const;
  bool getBool(const std::string& path) const;
  std::string getString(const std::string& path) const;
  std::vector<double> getFloatList(const std::string& path) const;
  nlohmann::json getObject(const std::string& path) const;

  // Every key with its effective value, as a nested JSON document.
  const nlohmann::json& effective() const { return effective_; }

 private:
  const nlohmann::json& at(const std::string& path, ConfigKind kind) const;
  nlohmann::json flat_;       // dotted path -> value, all keys present
  nlohmann::json effective_;  // nested form of flat_
  ConfigSchema schema_;       // a copy, so a Config never dangles
};

}  // namespace hearth
