// A small stochastic grammar that writes a play-like English text.
#include "charlm/text_grammar.h"

#include "common/rng.h"

#include <algorithm>
#include <cctype>
#include <iterator>

namespace charlm {
namespace {

using hearth::examples::Rng;

struct Noun {
  const char* singular;
  const char* plural;  // nullptr: regular plural
};

struct Verb {
  const char* base;
  const char* third;  // he/she/it form
  const char* past;
};

constexpr const char* kNames[] = {"Alice", "Bruno", "Clara",  "Dorian", "Edith", "Felix", "Greta",
                                  "Hugo",  "Iris",  "Jasper", "Kira",   "Leon",  "Mara",  "Nico"};

constexpr Noun kNouns[] = {
    {"king", nullptr},    {"queen", nullptr},    {"river", nullptr},    {"city", nullptr},
    {"garden", nullptr},  {"horse", nullptr},    {"letter", nullptr},   {"child", "children"},
    {"friend", nullptr},  {"house", nullptr},    {"door", nullptr},     {"ship", nullptr},
    {"road", nullptr},    {"night", nullptr},    {"morning", nullptr},  {"soldier", nullptr},
    {"sailor", nullptr},  {"mountain", nullptr}, {"candle", nullptr},   {"window", nullptr},
    {"village", nullptr}, {"merchant", nullptr}, {"stranger", nullptr}, {"forest", nullptr},
    {"tower", nullptr},   {"bridge", nullptr},   {"storm", nullptr},    {"winter", nullptr},
    {"evening", nullptr}, {"field", nullptr},    {"lamp", nullptr},     {"sword", nullptr},
    {"song", nullptr},    {"book", nullptr},     {"dream", nullptr},    {"fire", nullptr},
    {"stone", nullptr},   {"bird", nullptr},     {"wolf", "wolves"},    {"apple", nullptr},
    {"bell", nullptr},    {"coat", nullptr},     {"cup", nullptr},      {"harbor", nullptr},
    {"island", nullptr},  {"key", nullptr},      {"market", nullptr},   {"mill", nullptr},
    {"moon", nullptr},    {"orchard", nullptr},  {"painter", nullptr},  {"prince", nullptr},
    {"ring", nullptr},    {"shadow", nullptr},   {"star", nullptr},     {"table", nullptr},
    {"teacher", nullptr}, {"thief", "thieves"},  {"wall", nullptr},     {"wind", nullptr},
    {"farmer", nullptr},  {"doctor", nullptr},   {"baker", nullptr},    {"captain", nullptr},
    {"woman", "women"},   {"man", "men"},        {"mouse", "mice"},     {"knife", "knives"},
    {"church", nullptr},  {"box", nullptr},      {"glass", nullptr},    {"story", nullptr},
    {"lady", nullptr},    {"enemy", nullptr},    {"valley", nullptr},   {"servant", nullptr},
    {"crown", nullptr},   {"heart", nullptr},    {"voice", nullptr},    {"hand", nullptr},
};

constexpr const char* kAdjectives[] = {
    "old",     "young",   "quiet",   "bright",   "dark",   "cold",   "warm",   "small",
    "great",   "gentle",  "proud",   "strange",  "green",  "golden", "silver", "broken",
    "empty",   "hidden",  "distant", "ancient",  "little", "heavy",  "narrow", "wild",
    "tired",   "honest",  "clever",  "lonely",   "bitter", "sweet",  "early",  "red",
    "white",   "black",   "pale",    "shy",      "brave",  "kind",   "cruel",  "noble",
    "foolish", "patient", "hungry",  "faithful", "wicked", "merry",  "silent", "weary",
};

constexpr Verb kTransitive[] = {
    {"see", "sees", "saw"},
    {"find", "finds", "found"},
    {"take", "takes", "took"},
    {"keep", "keeps", "kept"},
    {"hold", "holds", "held"},
    {"carry", "carries", "carried"},
    {"follow", "follows", "followed"},
    {"watch", "watches", "watched"},
    {"call", "calls", "called"},
    {"love", "loves", "loved"},
    {"remember", "remembers", "remembered"},
    {"forget", "forgets", "forgot"},
    {"open", "opens", "opened"},
    {"close", "closes", "closed"},
    {"build", "builds", "built"},
    {"break", "breaks", "broke"},
    {"sell", "sells", "sold"},
    {"buy", "buys", "bought"},
    {"bring", "brings", "brought"},
    {"leave", "leaves", "left"},
    {"meet", "meets", "met"},
    {"know", "knows", "knew"},
    {"want", "wants", "wanted"},
    {"paint", "paints", "painted"},
    {"burn", "burns", "burned"},
    {"steal", "steals", "stole"},
    {"hide", "hides", "hid"},
    {"seek", "seeks", "sought"},
    {"guard", "guards", "guarded"},
    {"fear", "fears", "feared"},
    {"praise", "praises", "praised"},
    {"wake", "wakes", "woke"},
    {"teach", "teaches", "taught"},
    {"trust", "trusts", "trusted"},
    {"answer", "answers", "answered"},
    {"mend", "mends", "mended"},
};

constexpr Verb kIntransitive[] = {
    {"sleep", "sleeps", "slept"},
    {"wait", "waits", "waited"},
    {"sing", "sings", "sang"},
    {"laugh", "laughs", "laughed"},
    {"run", "runs", "ran"},
    {"walk", "walks", "walked"},
    {"dance", "dances", "danced"},
    {"weep", "weeps", "wept"},
    {"rest", "rests", "rested"},
    {"listen", "listens", "listened"},
    {"return", "returns", "returned"},
    {"wander", "wanders", "wandered"},
    {"fall", "falls", "fell"},
    {"rise", "rises", "rose"},
    {"shine", "shines", "shone"},
    {"pray", "prays", "prayed"},
};

constexpr const char* kAdverbs[] = {"slowly", "quietly", "softly",   "again",   "often",
                                    "never",  "always",  "today",    "tonight", "suddenly",
                                    "gladly", "alone",   "together", "still",   "away"};

constexpr const char* kPrepositions[] = {"in",     "on",     "under",   "near",   "behind",
                                         "beyond", "across", "through", "over",   "by",
                                         "with",   "into",   "from",    "toward", "without"};

constexpr const char* kSingularDeterminers[] = {"the", "a",    "my",  "this",  "that", "his",
                                                "her", "your", "our", "every", "no"};
constexpr const char* kPluralDeterminers[] = {"the", "these", "those",   "some", "many",  "my",
                                              "our", "their", "all the", "two",  "three", "no"};

template <typename T, std::size_t N>
const T& pick(Rng& rng, const T (&list)[N]) {
  return list[rng.skewed(N)];
}

bool isVowel(char c) {
  return std::string("aeiou").find(c) != std::string::npos;
}

std::string pluralOf(const Noun& noun) {
  if (noun.plural != nullptr) return noun.plural;
  std::string word = noun.singular;
  const char last = word.back();
  const std::string tail2 = word.size() >= 2 ? word.substr(word.size() - 2) : word;
  if (last == 'y' && !isVowel(word[word.size() - 2]))
    return word.substr(0, word.size() - 1) + "ies";
  if (last == 's' || last == 'x' || tail2 == "ch" || tail2 == "sh") return word + "es";
  return word + "s";
}

struct Phrase {
  std::string text;
  bool thirdSingular = true;  // governs verb agreement when used as subject
  std::string copula = "is";  // am / is / are
};

// "a" becomes "an" before a vowel.
std::string withDeterminer(const std::string& determiner, const std::string& rest) {
  if (determiner == "a" && isVowel(rest[0])) return "an " + rest;
  return determiner + " " + rest;
}

Phrase nounPhrase(Rng& rng, bool allowName = true) {
  if (allowName && rng.chance(12)) return {pick(rng, kNames), true, "is"};
  const Noun& noun = pick(rng, kNouns);
  const bool plural = rng.chance(30);
  std::string head = plural ? pluralOf(noun) : std::string(noun.singular);
  if (rng.chance(40)) head = std::string(pick(rng, kAdjectives)) + " " + head;
  if (plural) return {withDeterminer(pick(rng, kPluralDeterminers), head), false, "are"};
  return {withDeterminer(pick(rng, kSingularDeterminers), head), true, "is"};
}

Phrase subject(Rng& rng) {
  static constexpr const char* kPronouns[] = {"I", "you", "he", "she", "we", "they", "it"};
  if (rng.chance(35)) {
    const std::string pronoun = pick(rng, kPronouns);
    if (pronoun == "I") return {pronoun, false, "am"};
    if (pronoun == "he" || pronoun == "she" || pronoun == "it") return {pronoun, true, "is"};
    return {pronoun, false, "are"};
  }
  return nounPhrase(rng);
}

std::string objectPhrase(Rng& rng) {
  static constexpr const char* kObjectPronouns[] = {"me", "you", "him", "her", "us", "them", "it"};
  if (rng.chance(15)) return pick(rng, kObjectPronouns);
  return nounPhrase(rng).text;
}

std::string prepositional(Rng& rng) {
  return std::string(pick(rng, kPrepositions)) + " " + nounPhrase(rng, false).text;
}

std::string present(const Verb& verb, const Phrase& who) {
  return who.thirdSingular ? verb.third : verb.base;
}

// One clause without final punctuation, lower case.
std::string clause(Rng& rng) {
  switch (rng.below(9)) {
    case 0:
    case 1: {  // present transitive
      const Phrase who = subject(rng);
      std::string s = who.text + " ";
      if (rng.chance(20)) s += std::string(pick(rng, kAdverbs)) + " ";
      s += present(pick(rng, kTransitive), who) + " " + objectPhrase(rng);
      if (rng.chance(45)) s += " " + prepositional(rng);
      return s;
    }
    case 2:
    case 3: {  // past transitive
      const Phrase who = subject(rng);
      std::string s = who.text + " " + pick(rng, kTransitive).past + " " + objectPhrase(rng);
      if (rng.chance(45)) s += " " + prepositional(rng);
      return s;
    }
    case 4: {  // intransitive, present or past
      const Phrase who = subject(rng);
      const Verb& verb = pick(rng, kIntransitive);
      std::string s = who.text + " " + (rng.chance(50) ? present(verb, who) : verb.past);
      if (rng.chance(40)) s += std::string(" ") + pick(rng, kAdverbs);
      if (rng.chance(50)) s += " " + prepositional(rng);
      return s;
    }
    case 5: {  // copula
      const Phrase who = subject(rng);
      std::string s = who.text + " " + who.copula + " ";
      if (rng.chance(30)) s += rng.chance(50) ? "very " : "not ";
      return s + pick(rng, kAdjectives);
    }
    case 6: {  // there is / there are
      const Noun& noun = pick(rng, kNouns);
      std::string adjective = rng.chance(50) ? std::string(pick(rng, kAdjectives)) + " " : "";
      if (rng.chance(60)) {
        return "there is " + withDeterminer("a", adjective + noun.singular) + " " +
               prepositional(rng);
      }
      return "there are " + std::string(rng.chance(50) ? "many " : "no ") + adjective +
             pluralOf(noun) + " " + prepositional(rng);
    }
    case 7: {  // future
      std::string s = subject(rng).text + " will ";
      if (rng.chance(60)) return s + pick(rng, kTransitive).base + " " + objectPhrase(rng);
      return s + pick(rng, kIntransitive).base + " " + prepositional(rng);
    }
    default: {  // relative clause
      const Phrase who = nounPhrase(rng, false);
      return who.text + " that " + pick(rng, kTransitive).past + " " + objectPhrase(rng) + " " +
             who.copula + " " + pick(rng, kAdjectives);
    }
  }
}

std::string capitalized(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

std::string sentence(Rng& rng) {
  switch (rng.below(10)) {
    case 0: {  // question
      const Phrase who = subject(rng);
      switch (rng.below(3)) {
        case 0:
          return capitalized((who.thirdSingular ? "does " : "do ") + who.text + " " +
                             pick(rng, kTransitive).base + " " + objectPhrase(rng)) +
                 "?";
        case 1:
          return "Where " + who.copula + " " + who.text + "?";
        default:
          return "Why did " + who.text + " " + pick(rng, kTransitive).base + " " +
                 objectPhrase(rng) + "?";
      }
    }
    case 1:  // imperative
      return capitalized(std::string(pick(rng, kTransitive).base) + " " + objectPhrase(rng)) +
             (rng.chance(50) ? ", " + std::string(pick(rng, kNames)) : std::string()) +
             (rng.chance(50) ? "!" : ".");
    case 2:  // vocative
      return std::string(pick(rng, kNames)) + ", " + clause(rng) + ".";
    case 3:  // exclamation
      return rng.chance(50) ? "O " + std::string(pick(rng, kAdjectives)) + " " +
                                  pick(rng, kNouns).singular + "!"
                            : "Alas, " + clause(rng) + "!";
    case 4:
    case 5:  // compound
      return capitalized(clause(rng)) + (rng.chance(50) ? ", and " : ", but ") + clause(rng) + ".";
    default:
      return capitalized(clause(rng)) + ".";
  }
}

std::string stageDirection(Rng& rng) {
  constexpr std::size_t kCount = std::size(kNames);
  const std::size_t first = rng.skewed(kCount);
  const std::string a = kNames[first];
  const std::string b = kNames[(first + 1 + rng.below(kCount - 1)) % kCount];  // never a
  switch (rng.below(3)) {
    case 0:
      return "[Enter " + a + " and " + b + ".]";
    case 1:
      return "[Exit " + a + ".]";
    default:
      return "[" + a + " " + pick(rng, kTransitive).third + " the " + pick(rng, kNouns).singular +
             ".]";
  }
}

}  // namespace

std::string generateDefaultText(std::uint64_t seed, std::size_t targetChars) {
  Rng rng(seed);
  std::string text;
  text.reserve(targetChars + 512);
  int scene = 0;
  int speechesLeft = 0;
  while (text.size() < targetChars) {
    if (speechesLeft == 0) {
      ++scene;
      speechesLeft = 20 + static_cast<int>(rng.below(30));
      text += "SCENE " + std::to_string(scene) + ". " + capitalized(nounPhrase(rng, false).text) +
              " " + prepositional(rng) + ".\n\n";
    }
    --speechesLeft;
    if (rng.chance(8)) {
      text += stageDirection(rng) + "\n\n";
      continue;
    }
    text += std::string(pick(rng, kNames)) + ":\n";
    const std::size_t lines = 1 + rng.skewed(3);
    for (std::size_t l = 0; l < lines; ++l) {
      text += sentence(rng);
      if (rng.chance(35)) text += " " + sentence(rng);
      text += "\n";
    }
    text += "\n";
  }
  return text;
}

}  // namespace charlm
