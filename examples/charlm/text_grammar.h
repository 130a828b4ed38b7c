// charlm/text_grammar.h — the built-in training text of the char-level LM
// example, so that it runs with no download.
//
// generateDefaultText(seed, targetChars) produces English-like text from a
// small stochastic grammar: a few hundred words (names, nouns with regular and
// irregular plurals, adjectives, verbs in three forms, adverbs, prepositions),
// sentences of a dozen shapes with subject-verb agreement, and a play-like
// layout (speaker lines "Name:" followed by one to three lines of speech,
// blank lines between speeches, now and then a stage direction in brackets).
// Word choice is skewed towards the start of each list, so frequent words are
// frequent, like in real text. The text has plenty of structure a model can
// learn (spelling, spacing, agreement, layout): a char-level model gets far
// below the unigram entropy.
//
// Deterministic: the same (seed, targetChars) gives the same bytes on every
// platform (SplitMix64 of common/rng.h, no std distributions). The result is
// plain ASCII and ends at a speech boundary once it reaches targetChars.
// Pure function; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace charlm {

std::string generateDefaultText(std::uint64_t seed, std::size_t targetChars);

}  // namespace charlm
