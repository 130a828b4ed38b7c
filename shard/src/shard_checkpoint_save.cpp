// saveShard: validates a ShardState, encodes it as one .hsc file and writes it
// atomically (format in shard_checkpoint_format.h, docs/checkpoints.md).
#include <string>
#include <vector>

#include "hearth/compress/payload.h"
#include "hearth/shard/shard_checkpoint.h"
#include "shard_checkpoint_file.h"
#include "shard_checkpoint_format.h"

namespace hearth {
namespace {

std::string describe(const at::Tensor& tensor) {
  if (!tensor.defined()) return "an undefined tensor";
  return std::string(c10::toString(tensor.scalar_type())) + " tensor of " +
         std::to_string(tensor.dim()) + " dimension(s) and " + std::to_string(tensor.numel()) +
         " elements";
}

}  // namespace

std::string shardFileName(int rank, int worldSize) {
  return "shard-" + std::to_string(rank) + "-of-" + std::to_string(worldSize) + ".hsc";
}

void saveShard(const std::string& dir, const ShardState& state) {
  const FlatLayout& layout = state.layout;
  if (layout.paddedNumel() == 0) {
    throw ShardCheckpointError("saveShard: the state has a default-constructed layout");
  }
  if (state.rank < 0 || state.rank >= layout.worldSize()) {
    throw ShardCheckpointError("saveShard: rank " + std::to_string(state.rank) +
                               " is not in the layout's world of " +
                               std::to_string(layout.worldSize()));
  }
  const std::string path = dir + "/" + shardFileName(state.rank, layout.worldSize());
  const std::size_t sliceNumel = layout.dataRange(state.rank).size();

  ckpt::ShardHeader header;
  header.layout = layout;
  header.rank = state.rank;
  header.step = state.step;
  header.checkpointId = state.checkpointId;
  header.meta = state.meta;
  // Contiguous CPU copies (no copy when already so) that the spans point into.
  std::vector<at::Tensor> slices;
  std::vector<ckpt::ByteSpan> sectionData;
  for (const auto& [name, tensor] : state.slices) {
    if (name.empty()) throw ShardCheckpointError(path + ": slice with an empty name");
    if (!tensor.defined() || tensor.scalar_type() != at::kFloat || tensor.dim() != 1 ||
        static_cast<std::size_t>(tensor.numel()) != sliceNumel) {
      throw ShardCheckpointError(path + ": slice '" + name + "' must be a 1-D float32 tensor of " +
                                 std::to_string(sliceNumel) + " elements (rank " +
                                 std::to_string(state.rank) + "'s data range), got " +
                                 describe(tensor));
    }
    slices.push_back(tensor.to(at::kCPU).contiguous());
    const std::size_t bytes = sliceNumel * sizeof(float);
    sectionData.push_back({slices.back().data_ptr<float>(), bytes});
    header.sections.push_back(
        {ckpt::SectionKind::kSlice, name, sliceNumel, bytes, 0,
         compress::crc32c(reinterpret_cast<const std::uint8_t*>(slices.back().data_ptr<float>()),
                          bytes)});
  }
  for (const auto& [name, bytes] : state.blobs) {
    if (name.empty()) throw ShardCheckpointError(path + ": blob with an empty name");
    sectionData.push_back({bytes.data(), bytes.size()});
    header.sections.push_back({ckpt::SectionKind::kBlob, name, bytes.size(), bytes.size(), 0,
                               compress::crc32c(bytes.data(), bytes.size())});
  }
  ckpt::assignOffsets(header);

  std::string json;
  try {
    json = ckpt::encodeHeaderJson(header);
  } catch (const nlohmann::json::exception& e) {
    throw ShardCheckpointError(path + ": meta cannot be encoded as JSON: " + e.what());
  }
  if (json.size() > ckpt::kMaxHeaderBytes) {
    throw ShardCheckpointError(path + ": header of " + std::to_string(json.size()) +
                               " bytes is larger than the format allows");
  }
  const std::vector<std::uint8_t> prefix = ckpt::encodePrefix(json);
  const std::uint64_t fileSize = prefix.size() + header.dataBytes + ckpt::kTrailerSize;
  const std::vector<std::uint8_t> trailer =
      ckpt::encodeTrailer(fileSize, ckpt::getU32(prefix.data() + 16));
  static const std::uint8_t kZeros[ckpt::kSectionAlign] = {};

  std::vector<ckpt::ByteSpan> pieces{{prefix.data(), prefix.size()}};
  for (std::size_t i = 0; i < sectionData.size(); ++i) {
    pieces.push_back(sectionData[i]);
    const std::uint64_t pad = ckpt::alignUp(sectionData[i].size) - sectionData[i].size;
    if (pad > 0) pieces.push_back({kZeros, static_cast<std::size_t>(pad)});
  }
  pieces.push_back({trailer.data(), trailer.size()});
  ckpt::ensureDirectory(dir);
  ckpt::writeFileAtomically(path, pieces);
}

}  // namespace hearth
