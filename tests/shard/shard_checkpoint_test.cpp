// Sharded checkpoints: round trip, resharding to other world sizes,
// consolidation into a torch::nn module, a hostile table of broken files and
// sets, and a write to a full filesystem.
#include "hearth/shard/shard_checkpoint.h"

#include <sys/mount.h>
#include <unistd.h>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/serialize.h>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include <gtest/gtest.h>

#include "hearth/compress/payload.h"

namespace hearth {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "hearth-shardckpt-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code error;
    fs::remove_all(path_, error);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

const std::vector<std::string> kSliceNames = {"param", "optim.exp_avg", "optim.exp_avg_sq"};

FlatLayout testLayout(int world) {
  // 15 + 7 + 8 + 37 = 67 elements: shards end inside parameters and the last
  // rank of 4 owns a short data range.
  return FlatLayout({"w", "b", "v", "blk.0.u"}, {{3, 5}, {7}, {2, 2, 2}, {37}}, world, 4);
}

// The global vector of slice `name`: distinct values per slice and index.
at::Tensor globalData(const std::string& name, std::size_t numel) {
  const float base = static_cast<float>(std::hash<std::string>{}(name) % 97);
  return at::arange(static_cast<std::int64_t>(numel), at::kFloat) * 0.25f + base;
}

at::Tensor cut(const at::Tensor& global, FlatRange range) {
  return global
      .narrow(0, static_cast<std::int64_t>(range.lo), static_cast<std::int64_t>(range.size()))
      .clone();
}

ShardState makeState(const FlatLayout& layout, int rank, std::int64_t step, std::uint64_t id) {
  ShardState state;
  state.layout = layout;
  state.rank = rank;
  state.step = step;
  state.checkpointId = id;
  for (const auto& name : kSliceNames) {
    state.slices[name] = cut(globalData(name, layout.numel()), layout.dataRange(rank));
  }
  state.blobs["rng"] = {static_cast<std::uint8_t>(rank), 1, 2, 3, 255};
  state.blobs["codec"] = std::vector<std::uint8_t>(100, static_cast<std::uint8_t>(7 + rank));
  state.blobs["empty"] = {};
  state.meta = {{"optimizer", "adam"}, {"lr", 0.001}, {"adam_step", step}, {"writer", rank}};
  return state;
}

void saveSet(const std::string& dir, const FlatLayout& layout, std::int64_t step,
             std::uint64_t id) {
  for (int r = 0; r < layout.worldSize(); ++r) saveShard(dir, makeState(layout, r, step, id));
  writeManifest(dir, layout.worldSize(), step, id);
}

std::vector<std::uint8_t> readBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void writeBytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

std::uint32_t getU32(const std::uint8_t* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

void putU32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

void putU64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

std::uint64_t alignUp(std::uint64_t v) {
  return (v + 63) / 64 * 64;
}

// Re-encodes a shard file with its header JSON edited, every checksum and size
// recomputed (docs/checkpoints.md), so that the decoder's field validation —
// not a checksum — has to catch the edit.
void rewriteHeader(const std::string& path, const std::function<void(nlohmann::json&)>& edit) {
  const std::vector<std::uint8_t> file = readBytes(path);
  const std::uint32_t length = getU32(file.data() + 12);
  nlohmann::json header = nlohmann::json::parse(file.begin() + 24, file.begin() + 24 + length);
  const std::size_t dataStart = alignUp(24 + length);
  const std::vector<std::uint8_t> data(file.begin() + static_cast<std::ptrdiff_t>(dataStart),
                                       file.end() - 24);
  edit(header);
  const std::string json = header.dump();
  std::vector<std::uint8_t> out(alignUp(24 + json.size()), 0);
  std::memcpy(out.data(), file.data(), 12);  // magic, version
  putU32(out.data() + 12, static_cast<std::uint32_t>(json.size()));
  const std::uint32_t crc =
      compress::crc32c(reinterpret_cast<const std::uint8_t*>(json.data()), json.size());
  putU32(out.data() + 16, crc);
  std::memcpy(out.data() + 24, json.data(), json.size());
  out.insert(out.end(), data.begin(), data.end());
  std::vector<std::uint8_t> trailer(file.end() - 24, file.end());
  putU64(trailer.data() + 8, out.size() + 24);
  putU32(trailer.data() + 16, crc);
  out.insert(out.end(), trailer.begin(), trailer.end());
  writeBytes(path, out);
}

// Runs fn, which must throw ShardCheckpointError whose what() names `file`.
template <typename Fn>
std::string expectRejected(Fn&& fn, const std::string& file, const std::string& label) {
  try {
    fn();
  } catch (const ShardCheckpointError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(file), std::string::npos)
        << label << ": '" << what << "' does not name " << file;
    return what;
  } catch (const std::exception& e) {
    ADD_FAILURE() << label << ": threw a non-ShardCheckpointError: " << e.what();
    return "";
  }
  ADD_FAILURE() << label << ": accepted";
  return "";
}

void expectSameState(const ShardState& a, const ShardState& b) {
  EXPECT_TRUE(a.layout.sameParameters(b.layout));
  EXPECT_EQ(a.layout.worldSize(), b.layout.worldSize());
  EXPECT_EQ(a.layout.alignElements(), b.layout.alignElements());
  EXPECT_EQ(a.rank, b.rank);
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.checkpointId, b.checkpointId);
  ASSERT_EQ(a.slices.size(), b.slices.size());
  for (const auto& [name, tensor] : a.slices) {
    ASSERT_TRUE(b.slices.count(name)) << name;
    EXPECT_TRUE(at::equal(tensor, b.slices.at(name))) << name;
  }
  EXPECT_EQ(a.blobs, b.blobs);
  EXPECT_EQ(a.meta, b.meta);
}

std::vector<std::string> tempFiles(const std::string& dir) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().find(".tmp.") != std::string::npos) {
      found.push_back(entry.path().string());
    }
  }
  return found;
}

TEST(ShardCheckpoint, RoundTripsEveryField) {
  TempDir dir;
  const FlatLayout layout = testLayout(4);
  for (int rank = 0; rank < 4; ++rank) {
    ShardState state = makeState(layout, rank, -1234567890123LL, 0xFEDCBA9876543210ULL);
    state.meta["nested"] = {{"list", {1, 2, 3}}, {"text", "caf\xc3\xa9"}};
    saveShard(dir.path(), state);
    const std::string path = dir / shardFileName(rank, 4);
    EXPECT_TRUE(fs::exists(path));
    expectSameState(loadShard(path), state);
  }
  EXPECT_TRUE(tempFiles(dir.path()).empty());
}

TEST(ShardCheckpoint, RoundTripsNoSlicesAndAnEmptyDataRange) {
  TempDir dir;
  // 5 elements over 4 ranks with alignment 4: ranks 2 and 3 own only padding.
  const FlatLayout layout({"x"}, {{5}}, 4, 4);
  ASSERT_TRUE(layout.dataRange(3).empty());
  ShardState state;
  state.layout = layout;
  state.rank = 3;
  state.slices["param"] = at::empty({0}, at::kFloat);
  saveShard(dir.path(), state);
  expectSameState(loadShard(dir / shardFileName(3, 4)), state);
  state.slices.clear();
  state.rank = 2;
  saveShard(dir.path(), state);
  expectSameState(loadShard(dir / shardFileName(2, 4)), state);
}

TEST(ShardCheckpoint, SaveRejectsAnInvalidState) {
  TempDir dir;
  ShardState state = makeState(testLayout(4), 1, 1, 1);
  state.slices["param"] = at::zeros({3}, at::kFloat);
  const std::string path = dir / shardFileName(1, 4);
  expectRejected([&] { saveShard(dir.path(), state); }, path, "short slice");
  state.slices["param"] = at::zeros({20}, at::kDouble);
  expectRejected([&] { saveShard(dir.path(), state); }, path, "double slice");
  state.slices["param"] = at::zeros({4, 5}, at::kFloat);
  expectRejected([&] { saveShard(dir.path(), state); }, path, "2-D slice");
  state = makeState(testLayout(4), 1, 1, 1);
  state.rank = 4;
  EXPECT_THROW(saveShard(dir.path(), state), ShardCheckpointError);
  EXPECT_THROW(saveShard(dir.path(), ShardState{}), ShardCheckpointError);
  EXPECT_FALSE(fs::exists(path));
}

TEST(ShardCheckpoint, IoErrorsNameThePathAndTheErrno) {
  TempDir dir;
  writeBytes(dir / "file", {1, 2, 3});
  const std::string what =
      expectRejected([&] { saveShard(dir / "file", makeState(testLayout(2), 0, 1, 1)); },
                     dir / "file", "directory is a file");
  EXPECT_NE(what.find("directory"), std::string::npos) << what;
  const std::string absent =
      expectRejected([&] { loadShard(dir / "absent.hsc"); }, dir / "absent.hsc", "absent file");
  EXPECT_NE(absent.find(std::strerror(ENOENT)), std::string::npos) << absent;
}

struct ReshardCase {
  int oldWorld;
  int newWorld;
};

void PrintTo(const ReshardCase& c, std::ostream* os) {
  *os << c.oldWorld << " -> " << c.newWorld;
}

class Reshard : public ::testing::TestWithParam<ReshardCase> {};

TEST_P(Reshard, ReconstructsTheSameGlobalData) {
  const auto [oldWorld, newWorld] = GetParam();
  TempDir dir;
  const FlatLayout layout = testLayout(oldWorld);
  saveSet(dir.path(), layout, 42, 7);
  const CheckpointSet set(dir.path());
  EXPECT_EQ(set.worldSize(), oldWorld);
  EXPECT_EQ(set.step(), 42);
  EXPECT_EQ(set.checkpointId(), 7u);
  EXPECT_EQ(set.sliceNames(),
            (std::vector<std::string>{"optim.exp_avg", "optim.exp_avg_sq", "param"}));

  const FlatLayout newLayout = layout.withWorldSize(newWorld);
  std::map<std::string, std::vector<at::Tensor>> pieces;
  for (int r = 0; r < newWorld; ++r) {
    const ShardState state = set.reshard(newWorld, r);
    EXPECT_EQ(state.rank, r);
    EXPECT_EQ(state.layout.worldSize(), newWorld);
    EXPECT_TRUE(state.layout.sameParameters(layout));
    EXPECT_EQ(state.step, 42);
    EXPECT_EQ(state.checkpointId, 7u);
    ASSERT_EQ(state.slices.size(), kSliceNames.size());
    for (const auto& name : kSliceNames) {
      const at::Tensor& slice = state.slices.at(name);
      EXPECT_EQ(static_cast<std::size_t>(slice.numel()), newLayout.dataRange(r).size());
      pieces[name].push_back(slice);
    }
    // Blobs: old rank r's when it existed, else old rank 0's; meta from rank 0.
    const int source = r < oldWorld ? r : 0;
    EXPECT_EQ(state.blobs, makeState(layout, source, 42, 7).blobs) << "new rank " << r;
    EXPECT_EQ(state.meta, makeState(layout, 0, 42, 7).meta);
    // The resharded state is itself a valid shard of the new world.
    TempDir out;
    saveShard(out.path(), state);
    expectSameState(loadShard(out / shardFileName(r, newWorld)), state);
  }
  for (const auto& name : kSliceNames) {
    EXPECT_TRUE(at::equal(at::cat(pieces[name]), globalData(name, layout.numel()))) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(ShardCheckpoint, Reshard,
                         ::testing::Values(ReshardCase{4, 2}, ReshardCase{4, 3}, ReshardCase{3, 4},
                                           ReshardCase{2, 1}, ReshardCase{1, 5}, ReshardCase{4, 4}),
                         [](const auto& info) {
                           return std::to_string(info.param.oldWorld) + "to" +
                                  std::to_string(info.param.newWorld);
                         });

TEST(ShardCheckpoint, ReshardReadsOnlyTheOverlappingShards) {
  TempDir dir;
  const FlatLayout layout = testLayout(4);  // shards of 20: [0,20) [20,40) [40,60) [60,67)
  saveSet(dir.path(), layout, 1, 1);
  const CheckpointSet set(dir.path());
  // Corrupt old rank 3's first slice after the headers were validated.
  const std::string victim = dir / shardFileName(3, 4);
  std::vector<std::uint8_t> bytes = readBytes(victim);
  const std::size_t dataStart = alignUp(24 + getU32(bytes.data() + 12));
  bytes[dataStart] ^= 0x01;
  writeBytes(victim, bytes);
  // New world 2 (shards of 36): rank 0 reads old ranks 0 and 1 only.
  EXPECT_NO_THROW(set.reshard(2, 0));
  const std::string what = expectRejected([&] { set.reshard(2, 1); }, victim, "corrupt rank 3");
  EXPECT_NE(what.find("CRC32C"), std::string::npos) << what;
  expectRejected([&] { set.reshard(0, 0); }, dir.path(), "world 0");
  expectRejected([&] { set.reshard(2, 2); }, dir.path(), "rank 2 of 2");
}

struct Net : torch::nn::Module {
  Net() {
    fc1 = register_module("fc1", torch::nn::Linear(4, 3));
    fc2 = register_module("fc2", torch::nn::Linear(3, 2));
  }
  torch::nn::Linear fc1{nullptr};
  torch::nn::Linear fc2{nullptr};
};

// Saves the parameters of `module` (values from globalData) as a world-3 set.
FlatLayout saveModuleSet(const std::string& dir, torch::nn::Module& module) {
  std::vector<std::string> names;
  std::vector<std::vector<std::int64_t>> shapes;
  for (const auto& p : module.named_parameters()) {
    names.push_back(p.key());
    shapes.push_back(p.value().sizes().vec());
  }
  const FlatLayout layout(names, shapes, 3, 4);
  saveSet(dir, layout, 5, 99);
  return layout;
}

void expectModuleHoldsGlobal(torch::nn::Module& module, const FlatLayout& layout) {
  const at::Tensor global = globalData("param", layout.numel());
  const auto params = module.named_parameters();
  ASSERT_EQ(params.size(), layout.entries().size());
  for (const FlatEntry& e : layout.entries()) {
    const at::Tensor expected =
        global.narrow(0, static_cast<std::int64_t>(e.offset), static_cast<std::int64_t>(e.numel))
            .reshape(e.shape);
    EXPECT_TRUE(at::equal(params[e.name], expected)) << e.name;
  }
}

TEST(ShardCheckpoint, ConsolidatedFileLoadsIntoATorchModule) {
  TempDir dir;
  auto net = std::make_shared<Net>();
  const FlatLayout layout = saveModuleSet(dir.path(), *net);
  const std::string out = dir / "model.pt";
  consolidate(CheckpointSet(dir.path()), out);
  EXPECT_TRUE(tempFiles(dir.path()).empty());

  auto loaded = std::make_shared<Net>();
  torch::load(loaded, out);
  expectModuleHoldsGlobal(*loaded, layout);

  const auto tensors = readConsolidated(out);
  ASSERT_EQ(tensors.size(), 4u);
  for (const FlatEntry& e : layout.entries()) {
    ASSERT_TRUE(tensors.count(e.name)) << e.name;
    EXPECT_EQ(tensors.at(e.name).sizes().vec(), e.shape);
  }
}

TEST(ShardCheckpoint, ConsolidatedSequentialLoadsWithTorchLoad) {
  TempDir dir;
  torch::nn::Sequential seq(torch::nn::Linear(5, 6), torch::nn::Linear(6, 1));
  const FlatLayout layout = saveModuleSet(dir.path(), *seq);
  EXPECT_EQ(layout.entries()[0].name, "0.weight");
  const std::string out = dir / "seq.pt";
  consolidate(CheckpointSet(dir.path()), out);
  torch::nn::Sequential loaded(torch::nn::Linear(5, 6), torch::nn::Linear(6, 1));
  torch::load(loaded, out);
  expectModuleHoldsGlobal(*loaded, layout);
}

TEST(ShardCheckpoint, ConsolidateRejectsCollidingNames) {
  TempDir dir;
  saveSet(dir.path(), FlatLayout({"a", "a.b"}, {{2}, {3}}, 2, 4), 1, 1);
  expectRejected([&] { consolidate(CheckpointSet(dir.path()), dir / "out.pt"); }, "'a.b'",
                 "colliding names");
  EXPECT_FALSE(fs::exists(dir / "out.pt"));
}

// --- hostile table ---------------------------------------------------------

TEST(ShardCheckpointHostile, TruncatedFilesAreRejectedAtEveryOffset) {
  TempDir dir;
  saveSet(dir.path(), testLayout(2), 3, 3);
  const std::string path = dir / shardFileName(1, 2);
  const std::vector<std::uint8_t> bytes = readBytes(path);
  const std::size_t dataStart = alignUp(24 + getU32(bytes.data() + 12));
  std::vector<std::size_t> cuts = {0,
                                   1,
                                   7,
                                   8,
                                   12,
                                   23,
                                   24,
                                   25,
                                   100,
                                   dataStart - 1,
                                   dataStart,
                                   dataStart + 1,
                                   bytes.size() - 25,
                                   bytes.size() - 24,
                                   bytes.size() - 1};
  for (std::size_t at = 0; at < bytes.size(); at += 37) cuts.push_back(at);
  for (std::size_t cut : cuts) {
    writeBytes(path, std::vector<std::uint8_t>(bytes.begin(),
                                               bytes.begin() + static_cast<std::ptrdiff_t>(cut)));
    const std::string label = "truncated at " + std::to_string(cut);
    expectRejected([&] { loadShard(path); }, path, label);
    expectRejected([&] { CheckpointSet set(dir.path()); }, path, label + " (set)");
  }
  // Extended by garbage is as bad as truncated.
  std::vector<std::uint8_t> longer = bytes;
  longer.push_back(0);
  writeBytes(path, longer);
  expectRejected([&] { loadShard(path); }, path, "extended by one byte");
}

TEST(ShardCheckpointHostile, CorruptedBinaryFieldsAreRejected) {
  TempDir dir;
  saveSet(dir.path(), testLayout(2), 3, 3);
  const std::string path = dir / shardFileName(0, 2);
  const std::vector<std::uint8_t> good = readBytes(path);
  const std::size_t n = good.size();
  struct Flip {
    const char* what;
    std::size_t offset;
    std::uint8_t mask;
  };
  const std::vector<Flip> flips = {
      {"magic", 0, 0x20},
      {"version", 8, 0x02},
      {"header length low", 12, 0x01},
      {"header length high", 15, 0x80},
      {"header CRC", 16, 0x01},
      {"reserved", 20, 0x01},
      {"header JSON byte", 40, 0x01},
      {"trailer magic", n - 24, 0x01},
      {"trailer size", n - 16, 0x01},
      {"trailer header CRC", n - 8, 0x01},
      {"trailer reserved", n - 1, 0x01},
  };
  for (const Flip& flip : flips) {
    std::vector<std::uint8_t> bytes = good;
    bytes[flip.offset] ^= flip.mask;
    writeBytes(path, bytes);
    expectRejected([&] { loadShard(path); }, path, flip.what);
  }
}

TEST(ShardCheckpointHostile, EverySingleByteFlipIsRejected) {
  // Every byte is covered by a check: preamble and trailer fields, the header
  // and section CRC32Cs, and zero padding.
  TempDir dir;
  ShardState state;
  state.layout = FlatLayout({"w", "b"}, {{4, 3}, {5}}, 2, 4);
  state.rank = 1;
  state.slices["param"] = at::arange(5, at::kFloat);  // [12, 17)
  state.blobs["rng"] = {9, 8, 7};
  saveShard(dir.path(), state);
  const std::string path = dir / shardFileName(1, 2);
  const std::vector<std::uint8_t> good = readBytes(path);
  for (std::size_t at = 0; at < good.size(); ++at) {
    std::vector<std::uint8_t> bytes = good;
    bytes[at] ^= static_cast<std::uint8_t>(1u << (at % 8));
    writeBytes(path, bytes);
    expectRejected([&] { loadShard(path); }, path, "flip at byte " + std::to_string(at));
  }
}

TEST(ShardCheckpointHostile, EveryHeaderFieldIsValidated) {
  TempDir dir;
  saveSet(dir.path(), testLayout(2), 3, 3);
  const std::string path = dir / shardFileName(1, 2);
  const std::vector<std::uint8_t> good = readBytes(path);
  using Edit = std::function<void(nlohmann::json&)>;
  const std::vector<std::pair<std::string, Edit>> edits = {
      {"format", [](auto& h) { h["format"] = "something-else"; }},
      {"no layout", [](auto& h) { h.erase("layout"); }},
      {"layout world size", [](auto& h) { h["layout"]["world_size"] = 3; }},
      {"layout numel", [](auto& h) { h["layout"]["numel"] = 66; }},
      {"layout shape",
       [](auto& h) {
         h["layout"]["parameters"][0]["shape"] = {3, -5};
       }},
      {"layout huge shape",
       [](auto& h) {
         h["layout"]["parameters"][0]["shape"] = {1LL << 40, 1LL << 40};
       }},
      {"layout align", [](auto& h) { h["layout"]["align"] = 0; }},
      {"layout align overflow",
       [](auto& h) {  // world x align = 2^64 would wrap to 0
         h["layout"]["align"] = std::uint64_t(1) << 44;
         h["layout"]["world_size"] = 1 << 20;
         h["world_size"] = 1 << 20;
       }},
      {"rank out of range", [](auto& h) { h["rank"] = 2; }},
      {"rank negative", [](auto& h) { h["rank"] = -1; }},
      {"rank changed", [](auto& h) { h["rank"] = 0; }},
      {"world size", [](auto& h) { h["world_size"] = 4; }},
      {"world size zero", [](auto& h) { h["world_size"] = 0; }},
      {"step type", [](auto& h) { h["step"] = "3"; }},
      {"checkpoint id negative", [](auto& h) { h["checkpoint_id"] = -3; }},
      {"no meta", [](auto& h) { h.erase("meta"); }},
      {"data bytes", [](auto& h) { h["data_bytes"] = h["data_bytes"].template get<int>() + 64; }},
      {"sections type", [](auto& h) { h["sections"] = 5; }},
      {"section dropped", [](auto& h) { h["sections"].erase(h["sections"].size() - 1); }},
      {"section duplicated", [](auto& h) { h["sections"][1]["name"] = h["sections"][0]["name"]; }},
      {"section kind", [](auto& h) { h["sections"][0]["kind"] = "tensor"; }},
      {"section name", [](auto& h) { h["sections"][0]["name"] = ""; }},
      {"section dtype", [](auto& h) { h["sections"][0]["dtype"] = "float16"; }},
      {"section numel", [](auto& h) { h["sections"][0]["numel"] = 1000000000; }},
      {"section bytes", [](auto& h) { h["sections"][0]["bytes"] = 4; }},
      {"section offset", [](auto& h) { h["sections"][1]["offset"] = 0; }},
      {"section crc",
       [](auto& h) {
         h["sections"][0]["crc32c"] = h["sections"][0]["crc32c"].template get<std::uint32_t>() ^ 1u;
       }},
      {"blob numel", [](auto& h) { h["sections"][h["sections"].size() - 1]["numel"] = 1; }},
  };
  for (const auto& [label, edit] : edits) {
    writeBytes(path, good);
    rewriteHeader(path, edit);
    expectRejected([&] { loadShard(path); }, path, label);
  }
  // The helper itself keeps a file valid when nothing changes.
  writeBytes(path, good);
  rewriteHeader(path, [](auto&) {});
  EXPECT_NO_THROW(loadShard(path));
}

TEST(ShardCheckpointHostile, CrcMismatchInASectionNamesTheFile) {
  TempDir dir;
  saveSet(dir.path(), testLayout(2), 3, 3);
  const std::string path = dir / shardFileName(1, 2);
  std::vector<std::uint8_t> bytes = readBytes(path);
  const std::vector<std::uint8_t> good = bytes;
  const std::size_t dataStart = alignUp(24 + getU32(bytes.data() + 12));
  bytes[dataStart + 5] ^= 0x10;  // the first slice's second float
  writeBytes(path, bytes);
  const std::string what = expectRejected([&] { loadShard(path); }, path, "section CRC");
  EXPECT_NE(what.find("CRC32C mismatch in slice"), std::string::npos) << what;
  const CheckpointSet set(dir.path());  // headers are fine: lazy
  expectRejected([&] { set.loadRank(1); }, path, "section CRC via set");
  // Padding (after the 5-byte "rng" blob, the last section) must stay zero.
  bytes = good;
  bytes[bytes.size() - 24 - 10] = 1;
  writeBytes(path, bytes);
  const std::string pad = expectRejected([&] { loadShard(path); }, path, "section padding");
  EXPECT_NE(pad.find("padding"), std::string::npos) << pad;
  // ... and so must the padding after the header JSON.
  bytes = good;
  bytes[dataStart - 1] = ' ';
  writeBytes(path, bytes);
  expectRejected([&] { loadShard(path); }, path, "header padding");
}

TEST(ShardCheckpointHostile, InconsistentSetsAreRejected) {
  const FlatLayout layout = testLayout(4);
  struct Case {
    std::string label;
    std::function<void(const std::string& dir)> breakIt;
    std::string file;  // the file the error must name
    std::string words;
  };
  const std::vector<Case> cases = {
      {"another checkpoint id",
       [&](const std::string& d) { saveShard(d, makeState(layout, 2, 10, 999)); },
       shardFileName(2, 4), "mixed-up shard from another checkpoint"},
      {"another step", [&](const std::string& d) { saveShard(d, makeState(layout, 1, 11, 1)); },
       shardFileName(1, 4), "another step"},
      {"duplicate rank",
       [&](const std::string& d) {
         fs::copy_file(d + "/" + shardFileName(1, 4), d + "/shard-01-of-4.hsc");
       },
       "shard-01-of-4.hsc", "duplicate rank 1"},
      {"missing rank", [&](const std::string& d) { fs::remove(d + "/" + shardFileName(3, 4)); },
       shardFileName(3, 4), "missing rank 3"},
      {"missing manifest", [&](const std::string& d) { fs::remove(d + "/manifest.json"); },
       "manifest.json", "missing"},
      {"corrupt manifest",
       [&](const std::string& d) {
         writeBytes(d + "/manifest.json", {'{', '"', 'x'});
       },
       "manifest.json", "JSON"},
      {"manifest of the wrong type",
       [&](const std::string& d) {
         const std::string text = R"({"format": 5, "version": 1})";
         writeBytes(d + "/manifest.json", std::vector<std::uint8_t>(text.begin(), text.end()));
       },
       "manifest.json", "not a hearth checkpoint manifest"},
      {"manifest world size", [&](const std::string& d) { writeManifest(d, 5, 10, 1); },
       shardFileName(0, 4), "extra shard from a world of 4"},
      {"extra shard of another world",
       [&](const std::string& d) { saveShard(d, makeState(testLayout(5), 4, 10, 1)); },
       shardFileName(4, 5), "extra shard"},
      {"misnamed shard",
       [&](const std::string& d) {
         fs::rename(d + "/" + shardFileName(2, 4), d + "/" + shardFileName(3, 4));
       },
       shardFileName(3, 4), "belongs in " + shardFileName(2, 4)},
      {"layout mismatch",
       [&](const std::string& d) {
         const FlatLayout other({"w", "b", "v", "blk.0.x"}, {{3, 5}, {7}, {2, 2, 2}, {37}}, 4, 4);
         saveShard(d, makeState(other, 2, 10, 1));
       },
       shardFileName(2, 4), "layout mismatch"},
      {"slice set mismatch",
       [&](const std::string& d) {
         ShardState state = makeState(layout, 3, 10, 1);
         state.slices.erase("optim.exp_avg");
         saveShard(d, state);
       },
       shardFileName(3, 4), "slices"},
      {"truncated shard",
       [&](const std::string& d) { fs::resize_file(d + "/" + shardFileName(0, 4), 100); },
       shardFileName(0, 4), "truncated"},
  };
  for (const Case& c : cases) {
    TempDir dir;
    saveSet(dir.path(), layout, 10, 1);
    ASSERT_NO_THROW(CheckpointSet set(dir.path())) << c.label;
    c.breakIt(dir.path());
    const std::string what =
        expectRejected([&] { CheckpointSet set(dir.path()); }, c.file, c.label);
    EXPECT_NE(what.find(c.words), std::string::npos) << c.label << ": " << what;
  }
}

// --- full filesystem -----------------------------------------------------

class TinyTmpfs {
 public:
  TinyTmpfs() {
    if (::geteuid() != 0) {
      reason_ = "needs root to mount a 64 KiB tmpfs";
      return;
    }
    if (::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, "size=64k") != 0) {
      reason_ = std::string("cannot mount a tmpfs (") + std::strerror(errno) +
                "; no CAP_SYS_ADMIN in this container?)";
      return;
    }
    mounted_ = true;
  }
  ~TinyTmpfs() {
    if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& reason() const { return reason_; }
  const std::string& path() const { return dir_.path(); }

 private:
  TempDir dir_;
  bool mounted_ = false;
  std::string reason_;
};

TEST(ShardCheckpoint, FullFilesystemFailsCleanlyAndKeepsThePreviousCheckpoint) {
  TinyTmpfs tmpfs;
  if (!tmpfs.mounted()) GTEST_SKIP() << tmpfs.reason();
  const std::string dir = tmpfs.path() + "/ckpt";
  const FlatLayout small = testLayout(2);
  saveSet(dir, small, 1, 1);
  // 3 slices of 2 x 10000 floats / 2 ranks = 120 KB per shard: cannot fit.
  const FlatLayout big({"w", "b", "v", "blk.0.u"}, {{3, 5}, {7}, {2, 2, 2}, {20000}}, 2, 4);
  const std::string path = dir + "/" + shardFileName(0, 2);
  const std::string what =
      expectRejected([&] { saveShard(dir, makeState(big, 0, 2, 2)); }, path, "ENOSPC");
  EXPECT_NE(what.find(std::strerror(ENOSPC)), std::string::npos) << what;
  EXPECT_TRUE(tempFiles(dir).empty());

  const CheckpointSet set(dir);
  EXPECT_EQ(set.checkpointId(), 1u);
  for (int r = 0; r < 2; ++r) expectSameState(set.loadRank(r), makeState(small, r, 1, 1));
  for (const auto& name : kSliceNames) {
    EXPECT_TRUE(
        at::equal(set.readGlobal(name, {0, small.numel()}), globalData(name, small.numel())));
  }
}

}  // namespace
}  // namespace hearth

// --- fixtures for tests/tools/consolidate_test.sh ---------------------------
// Disabled: the tools test runs them with --gtest_also_run_disabled_tests and
// HEARTH_CKPT_FIXTURE set to a directory (write) or a consolidated file (verify).

namespace hearth {
namespace {

std::string fixtureEnv() {
  const char* value = std::getenv("HEARTH_CKPT_FIXTURE");
  return value == nullptr ? std::string() : std::string(value);
}

TEST(ShardCheckpointToolFixture, DISABLED_WriteCheckpoint) {
  const std::string dir = fixtureEnv();
  if (dir.empty()) GTEST_SKIP() << "HEARTH_CKPT_FIXTURE is not set";
  Net net;
  saveModuleSet(dir, net);  // world 3, step 5, checkpoint id 99
}

TEST(ShardCheckpointToolFixture, DISABLED_VerifyConsolidated) {
  const std::string file = fixtureEnv();
  if (file.empty()) GTEST_SKIP() << "HEARTH_CKPT_FIXTURE is not set";
  auto loaded = std::make_shared<Net>();
  torch::load(loaded, file);
  Net reference;
  std::vector<std::string> names;
  std::vector<std::vector<std::int64_t>> shapes;
  for (const auto& p : reference.named_parameters()) {
    names.push_back(p.key());
    shapes.push_back(p.value().sizes().vec());
  }
  expectModuleHoldsGlobal(*loaded, FlatLayout(names, shapes, 3, 4));
}

}  // namespace
}  // namespace hearth
