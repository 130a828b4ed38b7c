#include "line_splitter.h"

#include <utility>

namespace hearth::launcher {

LineSplitter::LineSplitter(std::string prefix, std::size_t maxLineBytes)
    : prefix_(std::move(prefix)), maxLineBytes_(maxLineBytes == 0 ? 1 : maxLineBytes) {}

std::string LineSplitter::feed(std::string_view data) {
  std::string out;
  while (!data.empty()) {
    auto newline = data.find('\n');
    std::size_t room = maxLineBytes_ - pending_.size();
    if (newline != std::string_view::npos && newline < room) {
      out += prefix_;
      out += pending_;
      out.append(data.substr(0, newline + 1));
      pending_.clear();
      data.remove_prefix(newline + 1);
    } else if (data.size() < room) {
      pending_.append(data);
      data = {};
    } else {
      // Overlong line: emit what fits as its own line.
      pending_.append(data.substr(0, room));
      data.remove_prefix(room);
      out += flush();
    }
  }
  return out;
}

std::string LineSplitter::flush() {
  if (pending_.empty()) return "";
  std::string out = prefix_ + pending_ + "\n";
  pending_.clear();
  return out;
}

}  // namespace hearth::launcher
