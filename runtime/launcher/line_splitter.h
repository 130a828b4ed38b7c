// line_splitter.h: turns a worker's byte stream into prefixed lines.
//
// Contract: feed() buffers bytes and returns every completed line with
// `prefix` prepended (each returned line ends in '\n'); a line longer than
// maxLineBytes is emitted in pieces. flush() returns the buffered partial line
// (prefixed, newline added) or "" when nothing is pending.
// Thread-safety: none; one instance per stream, used by one thread. No I/O,
// never blocks.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace hearth::launcher {

class LineSplitter {
 public:
  static constexpr std::size_t kDefaultMaxLineBytes = std::size_t{64} * 1024;

  explicit LineSplitter(std::string prefix, std::size_t maxLineBytes = kDefaultMaxLineBytes);

  std::string feed(std::string_view data);
  std::string flush();
  bool hasPending() const { return !pending_.empty(); }

 private:
  std::string prefix_;
  std::size_t maxLineBytes_;
  std::string pending_;
};

}  // namespace hearth::launcher
