// consolidate / readConsolidated: one ordinary LibTorch archive holding every
// parameter at its original shape, nested by the dots in its name the way
// torch::nn::Module::save nests submodules.
#include <torch/serialize/archive.h>

#include <map>
#include <memory>
#include <sstream>

#include "hearth/shard/shard_checkpoint.h"
#include "shard_checkpoint_file.h"

namespace hearth {
namespace {

struct Node {
  at::Tensor tensor;
  std::map<std::string, std::unique_ptr<Node>> children;
};

std::vector<std::string> splitName(const std::string& name) {
  std::vector<std::string> parts;
  std::stringstream in(name);
  std::string part;
  while (std::getline(in, part, '.')) parts.push_back(part);
  if (!name.empty() && name.back() == '.') parts.push_back("");
  return parts;
}

void insert(Node& root, const std::string& name, at::Tensor tensor, const std::string& where) {
  const std::vector<std::string> parts = splitName(name);
  Node* node = &root;
  for (const std::string& part : parts) {
    if (part.empty()) {
      throw ShardCheckpointError(where + ": parameter name '" + name + "' has an empty component");
    }
    if (node->tensor.defined()) break;  // reported below
    auto& child = node->children[part];
    if (!child) child = std::make_unique<Node>();
    node = child.get();
  }
  if (node->tensor.defined() || !node->children.empty()) {
    throw ShardCheckpointError(where + ": parameter name '" + name +
                               "' collides with another parameter's name");
  }
  node->tensor = std::move(tensor);
}

void write(const Node& node, torch::serialize::OutputArchive& archive) {
  for (const auto& [key, child] : node.children) {
    if (child->tensor.defined()) {
      archive.write(key, child->tensor);
    } else {
      torch::serialize::OutputArchive nested(archive.compilation_unit());
      write(*child, nested);
      archive.write(key, nested);
    }
  }
}

void readAll(torch::serialize::InputArchive& archive, const std::string& prefix,
             std::map<std::string, at::Tensor>& out) {
  for (const std::string& key : archive.keys()) {
    at::Tensor tensor;
    if (archive.try_read(key, tensor)) {
      out[prefix + key] = tensor;
      continue;
    }
    torch::serialize::InputArchive nested;
    if (archive.try_read(key, nested)) readAll(nested, prefix + key + ".", out);
  }
}

}  // namespace

void consolidate(const CheckpointSet& set, const std::string& outputPath) {
  const FlatLayout& layout = set.layout();
  const at::Tensor global = set.readGlobal("param", FlatRange{0, layout.numel()});
  Node root;
  for (const FlatEntry& entry : layout.entries()) {
    at::Tensor tensor = global
                            .narrow(0, static_cast<std::int64_t>(entry.offset),
                                    static_cast<std::int64_t>(entry.numel))
                            .reshape(entry.shape)
                            .clone();
    insert(root, entry.name, std::move(tensor), set.dir());
  }
  std::string bytes;
  try {
    torch::serialize::OutputArchive archive;
    write(root, archive);
    archive.save_to([&bytes](const void* data, std::size_t size) {
      bytes.append(static_cast<const char*>(data), size);
      return size;
    });
  } catch (const c10::Error& e) {
    throw ShardCheckpointError(outputPath + ": cannot serialize: " + e.what_without_backtrace());
  }
  ckpt::writeFileAtomically(outputPath, {{bytes.data(), bytes.size()}});
}

std::map<std::string, at::Tensor> readConsolidated(const std::string& path) {
  std::map<std::string, at::Tensor> out;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    readAll(archive, "", out);
  } catch (const c10::Error& e) {
    throw ShardCheckpointError(path +
                               ": not a readable LibTorch archive: " + e.what_without_backtrace());
  }
  return out;
}

}  // namespace hearth
