// Loading, splitting and sampling the char-level corpus.
#include "charlm/corpus.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/randint.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "charlm/text_grammar.h"

namespace charlm {
namespace {

std::string readTextFile(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string what = "data.path: '" + path + "'";
  if (!fs::exists(path, ec)) throw CorpusError(what + " does not exist");
  if (fs::is_directory(path, ec)) throw CorpusError(what + " is a directory, not a text file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CorpusError(what + " cannot be opened for reading");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw CorpusError(what + " could not be read");
  if (text.empty()) throw CorpusError(what + " is empty");
  return text;
}

at::Tensor toTensor(const std::vector<std::int64_t>& ids) {
  return at::from_blob(const_cast<std::int64_t*>(ids.data()),
                       {static_cast<std::int64_t>(ids.size())}, at::kLong)
      .clone();
}

// Windows starting at `starts`: inputs [n, block] and the next-char targets.
TokenBatch gather(const at::Tensor& tokens, const at::Tensor& starts, std::int64_t block) {
  const auto offsets = at::arange(block + 1, at::kLong);
  const auto index = starts.unsqueeze(1).add(offsets.unsqueeze(0));  // [n, block+1]
  const auto windows = tokens.index_select(0, index.reshape({-1})).view({starts.size(0), -1});
  return {windows.slice(1, 0, block), windows.slice(1, 1, block + 1)};
}

double unigramCrossEntropy(const std::vector<std::int64_t>& train,
                           const std::vector<std::int64_t>& heldOut, std::int64_t vocabSize) {
  std::vector<double> counts(static_cast<std::size_t>(vocabSize), 1.0);  // add-one smoothing
  for (auto id : train) counts[static_cast<std::size_t>(id)] += 1.0;
  const double total = static_cast<double>(train.size()) + static_cast<double>(vocabSize);
  double nats = 0;
  for (auto id : heldOut) nats -= std::log(counts[static_cast<std::size_t>(id)] / total);
  return nats / static_cast<double>(heldOut.size());
}

}  // namespace

CharVocab CharVocab::fromText(const std::string& text) {
  std::array<bool, 256> seen{};
  for (char c : text) seen[static_cast<unsigned char>(c)] = true;
  CharVocab vocab;
  vocab.idOf_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    if (!seen[b]) continue;
    vocab.idOf_[b] = static_cast<std::int16_t>(vocab.chars_.size());
    vocab.chars_.push_back(static_cast<char>(b));
  }
  return vocab;
}

std::vector<std::int64_t> CharVocab::encode(const std::string& text) const {
  std::vector<std::int64_t> ids;
  ids.reserve(text.size());
  for (char c : text) ids.push_back(idOf(c));
  return ids;
}

std::string CharVocab::decode(const std::vector<std::int64_t>& ids) const {
  std::string text;
  text.reserve(ids.size());
  for (auto id : ids) text.push_back(chars_.at(static_cast<std::size_t>(id)));
  return text;
}

Corpus Corpus::load(const CorpusOptions& options) {
  Corpus corpus;
  std::string text;
  if (options.path.empty()) {
    text = generateDefaultText(options.seed, options.defaultChars);
    corpus.description_ = "built-in text (seed " + std::to_string(options.seed) + ")";
  } else {
    text = readTextFile(options.path);
    corpus.description_ = options.path;
  }
  corpus.vocab_ = CharVocab::fromText(text);
  const auto ids = corpus.vocab_.encode(text);
  const auto total = static_cast<std::int64_t>(ids.size());
  const auto heldOut = static_cast<std::int64_t>(std::llround(total * options.valFraction));
  const auto trainCount = total - heldOut;
  const std::int64_t minimum = options.blockSize + 2;
  if (trainCount < minimum || heldOut < minimum) {
    std::ostringstream message;
    message << "data.path: " << corpus.description_ << " has " << total
            << " characters; with data.val_fraction " << options.valFraction
            << " both the training part (" << trainCount << ") and the held-out part (" << heldOut
            << ") need at least model.block_size + 2 = " << minimum;
    throw CorpusError(message.str());
  }
  const std::vector<std::int64_t> trainIds(ids.begin(), ids.begin() + trainCount);
  const std::vector<std::int64_t> heldOutIds(ids.begin() + trainCount, ids.end());
  corpus.train_ = toTensor(trainIds);
  corpus.heldOut_ = toTensor(heldOutIds);
  corpus.unigramLoss_ = unigramCrossEntropy(trainIds, heldOutIds, corpus.vocab_.size());
  return corpus;
}

TokenBatch Corpus::sampleTrainBatch(std::int64_t batch, std::int64_t block) const {
  const auto starts = at::randint(0, train_.numel() - block, {batch}, at::kLong);
  return gather(train_, starts, block);
}

std::vector<TokenBatch> Corpus::heldOutBatches(std::int64_t windows, std::int64_t batch,
                                               std::int64_t block) const {
  const std::int64_t span = heldOut_.numel() - block - 1;  // last valid start
  std::vector<std::int64_t> starts(static_cast<std::size_t>(windows));
  for (std::int64_t w = 0; w < windows; ++w) {
    starts[static_cast<std::size_t>(w)] = windows == 1 ? 0 : span * w / (windows - 1);
  }
  const auto all = gather(heldOut_, toTensor(starts), block);
  std::vector<TokenBatch> batches;
  for (std::int64_t begin = 0; begin < windows; begin += batch) {
    const std::int64_t end = std::min(windows, begin + batch);
    batches.push_back({all.inputs.slice(0, begin, end), all.targets.slice(0, begin, end)});
  }
  return batches;
}

}  // namespace charlm
