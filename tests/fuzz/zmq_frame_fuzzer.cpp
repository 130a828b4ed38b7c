// libFuzzer target for the hearth relay/node frame parser
// (transport/zmq/zmq_wire.h: checkHeader, HeaderReader, decodeDirectory,
// decodeIncarnations, isDialableEndpoint, via parseMessage). The input is a
// multipart message: a sequence of frames, each a u16 little-endian length
// and that many bytes (a short tail is the last frame). The parser must
// return true or false (with a reason) and never crash, hang, read out of
// bounds or allocate without bound; what it accepts must be consistent.
#include <cstdlib>
#include <string>
#include <vector>

#include "zmq_wire.h"

using namespace hearth::zmqwire;

namespace {

constexpr std::size_t kMaxFrames = 16;

std::vector<zmq::message_t> split(const std::uint8_t* data, std::size_t size) {
  std::vector<zmq::message_t> frames;
  std::size_t pos = 0;
  while (pos < size && frames.size() < kMaxFrames) {
    if (pos + 2 > size) {
      frames.emplace_back(data + pos, size - pos);
      break;
    }
    std::size_t len = data[pos] | (std::size_t{data[pos + 1]} << 8);
    pos += 2;
    if (len > size - pos) len = size - pos;
    frames.emplace_back(data + pos, len);
    pos += len;
  }
  return frames;
}

void checkAccepted(const ParsedMessage& m, const std::vector<zmq::message_t>& frames) {
  if (static_cast<int>(frames.size()) != expectedFrames(m.type)) std::abort();
  if (frames[0].size() != headerSize(m.type)) std::abort();
  if (m.type == Type::kMembership) {
    if (m.directory.size() != static_cast<std::size_t>(m.worldSize)) std::abort();
    if (m.incarnations.size() != static_cast<std::size_t>(m.worldSize)) std::abort();
    if (m.alive.size() != static_cast<std::size_t>(m.worldSize)) std::abort();
    // The directory round-trips.
    const std::string again = encodeDirectory(m.directory);
    if (again != frames[2].to_string()) std::abort();
    if (encodeIncarnations(m.incarnations) != frames[3].to_string()) std::abort();
    for (const auto& e : m.directory) {
      if (!e.endpoint.empty() && !isDialableEndpoint(e.endpoint)) std::abort();
      if (!e.key.empty() && e.key.size() != kCurveKeyBytes) std::abort();
    }
  }
  for (const auto& s : m.strings) {
    if (s.size() > kMaxStringBytes) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto frames = split(data, size);
  ParsedMessage parsed;
  std::string why;
  const bool ok = parseMessage(frames.data(), frames.size(), &parsed, &why);
  if (ok) {
    checkAccepted(parsed, frames);
  } else if (why.empty()) {
    std::abort();  // every refusal says why
  }
  // The primitives on their own, as the handlers also call them.
  Type type;
  std::string why2;
  if (ok && !checkHeader(frames.data(), frames.size(), &type, &why2)) std::abort();
  if (ok && type != parsed.type) std::abort();
  if (!frames.empty()) {
    std::vector<DirectoryEntry> directory;
    std::vector<std::uint64_t> incarnations;
    const int world =
        frames[0].size() > 0 ? static_cast<const std::uint8_t*>(frames[0].data())[0] % 9 : 1;
    decodeDirectory(frames.back(), world, &directory, &why2);
    decodeIncarnations(frames.back(), world, &incarnations, &why2);
    isDialableEndpoint(frames.back().to_string());
    keyOfZ85(frames.back().to_string());
  }
  return 0;
}
