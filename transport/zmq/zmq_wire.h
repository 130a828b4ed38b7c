// Internal: the hearth relay wire protocol (docs/transport_protocol.md), shared
// by the relay and the node. Frame 0 of every multipart message is a header:
// [version u8][type u8][fields, little-endian]; further frames carry strings or
// the payload. Parsing never throws: it returns false on any malformed input.
#pragma once

#include <zmq.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace hearth {
namespace zmqwire {

constexpr std::uint8_t kVersion = 1;

enum class Type : std::uint8_t {
  kHello = 1,       // node -> relay: i32 requested rank; frames: run id, join token
  kWelcome = 2,     // relay -> node: i32 rank, i32 world size
  kReject = 3,      // relay -> node: frame: reason
  kMembership = 4,  // relay -> node: u64 epoch, i32 world size; frame: alive byte per rank
  kData = 5,        // both: i32 peer (dst node->relay, src relay->node), u64 tag; frame: payload
  kPing = 6,        // node -> relay
  kPong = 7,        // relay -> node
  kLeave = 8,       // node -> relay
  kPeerLost = 9,    // relay -> node: i32 rank, u64 epoch; frame: reason
};

// Number of frames (after the ROUTER identity) each type must have.
inline int expectedFrames(Type type) {
  switch (type) {
    case Type::kHello:
      return 3;
    case Type::kReject:
    case Type::kMembership:
    case Type::kData:
    case Type::kPeerLost:
      return 2;
    case Type::kWelcome:
    case Type::kPing:
    case Type::kPong:
    case Type::kLeave:
      return 1;
  }
  return -1;
}

// Size of header frame 0 for each type.
inline std::size_t headerSize(Type type) {
  switch (type) {
    case Type::kHello:
      return 2 + 4;
    case Type::kWelcome:
      return 2 + 4 + 4;
    case Type::kMembership:
      return 2 + 8 + 4;
    case Type::kData:
      return 2 + 4 + 8;
    case Type::kPeerLost:
      return 2 + 4 + 8;
    case Type::kReject:
    case Type::kPing:
    case Type::kPong:
    case Type::kLeave:
      return 2;
  }
  return 0;
}

inline bool knownType(std::uint8_t t) {
  return t >= 1 && t <= 9;
}

// Builds header frames field by field.
class HeaderWriter {
 public:
  explicit HeaderWriter(Type type) {
    buf_[0] = kVersion;
    buf_[1] = static_cast<std::uint8_t>(type);
    size_ = 2;
  }
  HeaderWriter& i32(std::int32_t v) { return put(static_cast<std::uint32_t>(v), 4); }
  HeaderWriter& u64(std::uint64_t v) { return put(v, 8); }
  zmq::message_t message() const { return zmq::message_t(buf_, size_); }

 private:
  HeaderWriter& put(std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) buf_[size_++] = static_cast<std::uint8_t>(v >> (8 * i));
    return *this;
  }
  std::uint8_t buf_[32];
  std::size_t size_;
};

// Reads header fields in order; the caller checked the size against headerSize().
class HeaderReader {
 public:
  explicit HeaderReader(const zmq::message_t& m)
      : data_(static_cast<const std::uint8_t*>(m.data())), pos_(2) {}
  std::int32_t i32() { return static_cast<std::int32_t>(get(4)); }
  std::uint64_t u64() { return get(8); }

 private:
  std::uint64_t get(int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= std::uint64_t{data_[pos_++]} << (8 * i);
    return v;
  }
  const std::uint8_t* data_;
  std::size_t pos_;
};

// Validates version, type, frame count and header size. On failure `why`
// says what is wrong (for the log line / the MeshProtocolError).
inline bool checkHeader(const zmq::message_t* frames, std::size_t count, Type* type,
                        std::string* why) {
  if (count == 0) {
    *why = "empty message";
    return false;
  }
  const auto* h = static_cast<const std::uint8_t*>(frames[0].data());
  if (frames[0].size() < 2) {
    *why = "header frame shorter than 2 bytes";
    return false;
  }
  if (h[0] != kVersion) {
    *why = "unsupported protocol version " + std::to_string(h[0]) + " (expected " +
           std::to_string(kVersion) + ")";
    return false;
  }
  if (!knownType(h[1])) {
    *why = "unknown message type " + std::to_string(h[1]);
    return false;
  }
  *type = static_cast<Type>(h[1]);
  if (static_cast<int>(count) != expectedFrames(*type)) {
    *why = "message type " + std::to_string(h[1]) + " with " + std::to_string(count) +
           " frames (expected " + std::to_string(expectedFrames(*type)) + ")";
    return false;
  }
  if (frames[0].size() != headerSize(*type)) {
    *why = "message type " + std::to_string(h[1]) + " with a " + std::to_string(frames[0].size()) +
           "-byte header (expected " + std::to_string(headerSize(*type)) + ")";
    return false;
  }
  return true;
}

// Longest run id, token or reason string accepted.
constexpr std::size_t kMaxStringBytes = 4096;

}  // namespace zmqwire
}  // namespace hearth
