// manifest.json: writing (atomically) and validating reading.
#include "shard_checkpoint_manifest.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "hearth/shard/shard_checkpoint.h"
#include "shard_checkpoint_file.h"

namespace hearth {
namespace {

constexpr const char* kManifestFormat = "hearth-shard-checkpoint-manifest";
constexpr int kManifestVersion = 1;
constexpr std::uint64_t kMaxManifestBytes = std::uint64_t(64) << 20;
constexpr std::uint64_t kMaxWorldSize = std::uint64_t(1) << 20;

}  // namespace

void writeManifest(const std::string& dir, int worldSize, std::int64_t step,
                   std::uint64_t checkpointId) {
  const std::string path = dir + "/" + kShardManifestName;
  if (worldSize < 1 || static_cast<std::uint64_t>(worldSize) > kMaxWorldSize) {
    throw ShardCheckpointError(path + ": world size " + std::to_string(worldSize) +
                               " is out of range");
  }
  nlohmann::json shards = nlohmann::json::array();
  for (int r = 0; r < worldSize; ++r) shards.push_back(shardFileName(r, worldSize));
  const nlohmann::json json = {{"format", kManifestFormat},     {"version", kManifestVersion},
                               {"world_size", worldSize},       {"step", step},
                               {"checkpoint_id", checkpointId}, {"shards", shards}};
  const std::string text = json.dump(2) + "\n";
  ckpt::ensureDirectory(dir);
  ckpt::writeFileAtomically(path, {{text.data(), text.size()}});
}

namespace ckpt {

Manifest readManifest(const std::string& dir) {
  const std::string path = dir + "/" + kShardManifestName;
  std::error_code error;
  if (!std::filesystem::exists(path, error)) {
    throw ShardCheckpointError(path + ": missing: not a checkpoint, or an incomplete one (rank 0 " +
                               "writes the manifest after every shard is saved)");
  }
  std::string text;
  {
    ReadOnlyFile in(path);  // names the path: "missing" reads as ENOENT
    if (in.size() > kMaxManifestBytes) {
      throw ShardCheckpointError(path + ": " + std::to_string(in.size()) +
                                 " bytes is too large for a manifest");
    }
    text.resize(static_cast<std::size_t>(in.size()));
    in.readAt(0, text.data(), text.size());
  }
  auto bad = [&](const std::string& why) { return ShardCheckpointError(path + ": " + why); };
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("not valid JSON: ") + e.what());
  }
  if (!json.is_object() || !json.contains("format") || json["format"] != kManifestFormat) {
    throw bad("not a hearth checkpoint manifest");
  }
  if (!json.contains("version") || json["version"] != kManifestVersion) {
    throw bad("unsupported manifest version");
  }
  for (const char* key : {"world_size", "checkpoint_id"}) {
    if (!json.contains(key) || !json[key].is_number_unsigned()) {
      throw bad(std::string("'") + key + "' is missing or not an unsigned integer");
    }
  }
  if (!json.contains("step") || !json["step"].is_number_integer()) {
    throw bad("'step' is missing or not an integer");
  }
  const auto world = json["world_size"].get<std::uint64_t>();
  if (world < 1 || world > kMaxWorldSize) throw bad("'world_size' is out of range");
  Manifest manifest;
  manifest.worldSize = static_cast<int>(world);
  manifest.step = json["step"].get<std::int64_t>();
  manifest.checkpointId = json["checkpoint_id"].get<std::uint64_t>();
  return manifest;
}

}  // namespace ckpt
}  // namespace hearth
