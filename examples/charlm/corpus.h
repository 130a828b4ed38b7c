// charlm/corpus.h — the text a char-level LM trains on: where it comes from,
// its character vocabulary, the train/held-out split and batch sampling.
//
// Corpus::load() reads `path` as raw bytes (any text file; every distinct byte
// is one token), or, with an empty path, generates the built-in text
// (text_grammar.h). The last `valFraction` of the text is held out. Errors
// (missing, unreadable or empty file, or a split shorter than a block) throw
// CorpusError (a hearth::examples::DataError) with one line naming the file
// and the problem.
//
// Sampling: sampleTrainBatch() draws random windows from the training split
// with torch's global generator (seed it per rank with hearth::seedData), so
// each rank sees its own data. heldOutBatches() is deterministic: evenly spaced
// windows across the held-out split, so successive evaluations are comparable.
// unigramLoss() is the baseline a model must beat: the cross-entropy, in nats,
// of predicting each held-out character from the training split's character
// frequencies (add-one smoothed so unseen characters stay finite).
//
// A loaded Corpus is immutable; its methods are safe to call from several
// threads except that sampleTrainBatch() advances torch's global generator.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/data_error.h"

namespace charlm {

class CorpusError : public hearth::examples::DataError {
 public:
  using DataError::DataError;
};

// Maps the distinct bytes of a text to ids 0..size()-1 (in byte order).
class CharVocab {
 public:
  static CharVocab fromText(const std::string& text);
  std::int64_t size() const { return static_cast<std::int64_t>(chars_.size()); }
  // REQUIRES: every byte of `text` is in the vocabulary.
  std::vector<std::int64_t> encode(const std::string& text) const;
  std::string decode(const std::vector<std::int64_t>& ids) const;
  bool contains(char c) const { return idOf_[static_cast<unsigned char>(c)] >= 0; }
  std::int64_t idOf(char c) const { return idOf_[static_cast<unsigned char>(c)]; }

 private:
  std::string chars_;
  std::array<std::int16_t, 256> idOf_{};
};

struct CorpusOptions {
  std::string path;                   // empty: the built-in text
  double valFraction = 0.1;           // share of the text held out, taken from the end
  std::uint64_t seed = 1234;          // seeds the built-in text
  std::size_t defaultChars = 300000;  // size of the built-in text
  std::int64_t blockSize = 64;        // both splits must hold at least one window
};

struct TokenBatch {
  at::Tensor inputs;   // int64 [batch, block]
  at::Tensor targets;  // int64 [batch, block], inputs shifted by one
};

class Corpus {
 public:
  static Corpus load(const CorpusOptions& options);

  const CharVocab& vocab() const { return vocab_; }
  // "built-in text (seed S)" or the file path.
  const std::string& description() const { return description_; }
  std::int64_t trainChars() const { return train_.numel(); }
  std::int64_t heldOutChars() const { return heldOut_.numel(); }

  TokenBatch sampleTrainBatch(std::int64_t batch, std::int64_t block) const;
  // `windows` evenly spaced held-out windows, cut into batches of `batch`.
  std::vector<TokenBatch> heldOutBatches(std::int64_t windows, std::int64_t batch,
                                         std::int64_t block) const;
  double unigramLoss() const { return unigramLoss_; }

 private:
  CharVocab vocab_;
  std::string description_;
  at::Tensor train_;    // int64 token ids
  at::Tensor heldOut_;  // int64 token ids
  double unigramLoss_ = 0;
};

}  // namespace charlm
