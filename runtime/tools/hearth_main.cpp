// hearth — the project's command-line multi-tool.
//   hearth config-doc                 print the configuration keys as Markdown
//   hearth config-check FILE [--set key=value]...
//                                     validate a config file; print the effective config
//   hearth inspect FILE [--numel N]   describe a gradient payload, or say why it is invalid
//   hearth codecs                     list the gradient codecs
//   hearth keygen --out PREFIX [--force]
//                                     write a CURVE keypair: PREFIX.key (secret,
//                                     mode 0600) and PREFIX.pub; print the public key
//   hearth consolidate DIR OUT [--force]
//                                     merge a sharded ZeRO checkpoint directory into one
//                                     LibTorch file of named parameters (docs/checkpoints.md)
// Exit codes: 0 ok, 1 invalid payload, 2 invalid input or usage (including an
// invalid checkpoint or an output that cannot be written).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "hearth/compress/inspect.h"
#include "hearth/compress/registry.h"
#include "hearth/runtime/engine_schema.h"
#include "hearth/shard/shard_checkpoint.h"
#include "hearth/transport/curve_keys.h"

namespace {

int inspect(const std::string& path, std::uint64_t numel) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    std::fprintf(stderr, "hearth inspect: '%s' is not a readable file\n", path.c_str());
    return 2;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "hearth inspect: cannot open '%s'\n", path.c_str());
    return 2;
  }
  constexpr std::size_t kMaxFile = std::size_t(1) << 32;
  std::vector<std::uint8_t> bytes;
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(in.tellg());
  if (size > kMaxFile) {
    std::fprintf(stderr, "hearth inspect: '%s' is larger than any payload (4 GiB)\n", path.c_str());
    return 1;
  }
  in.seekg(0);
  bytes.resize(size);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  const auto report = hearth::compress::inspectPayload(bytes.data(), bytes.size(), numel);
  if (!report.valid) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), report.text.c_str());
    return 1;
  }
  std::cout << report.text;
  return 0;
}

int keygen(const std::string& prefix, bool force) {
  const std::string secretPath = prefix + ".key";
  const std::string publicPath = prefix + ".pub";
  if (!force) {
    for (const auto& path : {secretPath, publicPath}) {
      std::error_code error;
      if (std::filesystem::exists(path, error)) {
        std::fprintf(stderr, "hearth keygen: '%s' exists; refusing to overwrite it (--force)\n",
                     path.c_str());
        return 2;
      }
    }
  }
  try {
    const auto pair = hearth::generateCurveKeyPair();
    hearth::writeCurveSecretKeyFile(secretPath, pair, force);
    hearth::writeCurvePublicKeyFile(publicPath, pair.publicKey, force);
    std::fprintf(stderr, "hearth keygen: wrote %s (secret, mode 0600) and %s\n", secretPath.c_str(),
                 publicPath.c_str());
    std::printf("%s\n", pair.publicKey.c_str());
    return 0;
  } catch (const hearth::CurveKeyError& e) {
    std::fprintf(stderr, "hearth keygen: %s\n", e.what());
    return 2;
  }
}

int consolidateCheckpoint(const std::string& dir, const std::string& out, bool force) {
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) {
    std::fprintf(stderr, "hearth consolidate: '%s' is not a directory\n", dir.c_str());
    return 2;
  }
  if (!force && std::filesystem::exists(out, error)) {
    std::fprintf(stderr, "hearth consolidate: '%s' exists; refusing to overwrite it (--force)\n",
                 out.c_str());
    return 2;
  }
  try {
    const hearth::CheckpointSet set(dir);
    hearth::consolidate(set, out);
    std::fprintf(stderr,
                 "hearth consolidate: wrote %s: %zu parameters, %zu elements, step %lld, "
                 "checkpoint id %llu, from %d shards\n",
                 out.c_str(), set.layout().entries().size(), set.layout().numel(),
                 static_cast<long long>(set.step()),
                 static_cast<unsigned long long>(set.checkpointId()), set.worldSize());
    return 0;
  } catch (const hearth::ShardCheckpointError& e) {
    std::fprintf(stderr, "hearth consolidate: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {  // out of memory, a LibTorch error
    std::fprintf(stderr, "hearth consolidate: %s: %s\n", dir.c_str(), e.what());
    return 2;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hearth: tools for hearth's data-parallel runtime"};
  app.require_subcommand(1);

  auto* doc = app.add_subcommand("config-doc", "Print every configuration key as a Markdown table");

  auto* check = app.add_subcommand("config-check", "Validate a JSON config file");
  std::string file;
  std::vector<std::string> overrides;
  check->add_option("file", file, "Config file (JSON)")->required();
  check->add_option("--set", overrides, "Override a key: key=value (repeatable)");

  auto* inspectCommand =
      app.add_subcommand("inspect", "Describe a gradient payload file or say why it is invalid");
  std::string payloadPath;
  std::uint64_t numel = 0;
  inspectCommand->add_option("file", payloadPath, "Payload file")->required();
  inspectCommand->add_option("--numel", numel,
                             "Expected number of elements (default: trust the header, bounded)");

  auto* codecsCommand = app.add_subcommand("codecs", "List the gradient codecs");

  auto* keygenCommand = app.add_subcommand(
      "keygen", "Generate a CURVE keypair for the hearth transport (relay or node)");
  std::string keyPrefix;
  bool keyForce = false;
  keygenCommand->add_option("--out", keyPrefix, "Write PREFIX.key (secret, 0600) and PREFIX.pub")
      ->required();
  keygenCommand->add_flag("--force", keyForce, "Overwrite existing key files");

  auto* consolidateCommand = app.add_subcommand(
      "consolidate",
      "Merge a sharded (ZeRO) checkpoint directory into one LibTorch file: every parameter "
      "as a named tensor of its original shape, loadable with torch::load");
  std::string checkpointDir;
  std::string consolidatedPath;
  bool consolidateForce = false;
  consolidateCommand
      ->add_option("dir", checkpointDir, "Checkpoint directory (manifest.json + shard-*-of-*.hsc)")
      ->required();
  consolidateCommand->add_option("out", consolidatedPath, "Output file (LibTorch archive)")
      ->required();
  consolidateCommand->add_flag("--force", consolidateForce, "Overwrite an existing output file");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and friends exit 0; a usage error is exit code 2 (see the top).
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (consolidateCommand->parsed()) {
    return consolidateCheckpoint(checkpointDir, consolidatedPath, consolidateForce);
  }
  if (keygenCommand->parsed()) return keygen(keyPrefix, keyForce);
  if (inspectCommand->parsed()) return inspect(payloadPath, numel);
  if (codecsCommand->parsed()) {
    for (const auto& codec : hearth::compress::codecs()) {
      std::printf("%-10s %s\n", codec.name.c_str(), codec.description.c_str());
    }
    return 0;
  }
  const auto schema = hearth::engineConfigSchema();
  if (doc->parsed()) {
    std::cout << schema.toMarkdown();
    return 0;
  }
  try {
    const auto config = hearth::Config::load(schema, file, overrides);
    std::cout << config.effective().dump(2) << std::endl;
    return 0;
  } catch (const hearth::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}
