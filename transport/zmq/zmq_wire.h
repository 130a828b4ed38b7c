// Internal: the hearth relay wire protocol (docs/transport_protocol.md), shared
// by the relay and the node. Frame 0 of every multipart message is a header:
// [version u8][type u8][fields, little-endian]; further frames carry strings or
// the payload. Parsing never throws: it returns false on any malformed input.
#pragma once

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace hearth {
namespace zmqwire {

constexpr std::uint8_t kVersion = 9;

// The low `bytes` bytes of v at `at`, little-endian (every hearth header
// field: relay protocol, MEMBERSHIP's incarnations, bulk lanes).
inline void putLe(std::uint8_t* at, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) at[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
inline std::uint64_t getLe(const std::uint8_t* at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= std::uint64_t{at[i]} << (8 * i);
  return v;
}

// HELLO's resumeIncarnation for a node that joins afresh (not resuming after
// a relay restart).
constexpr std::uint64_t kNewNode = ~std::uint64_t{0};

enum class Type : std::uint8_t {
  kHello = 1,           // node -> relay: i32 requested rank, u64 resume incarnation
                        //   (kNewNode: a new node); frames: run id, join token,
                        //   advertised endpoint (may be empty), node CURVE public key (0/32 bytes),
                        //   same-host endpoint (may be empty), host identity (may be empty)
  kWelcome = 2,         // relay -> node: i32 rank, i32 world size, u64 incarnation
  kReject = 3,          // relay -> node, listener -> dialer: frame: reason
  kMembership = 4,      // relay -> node: u64 epoch, i32 world size; frames: alive byte per rank,
                        //   directory (encodeDirectory), u64 incarnation per rank
  kData = 5,            // i32 peer (dst node->relay; src relay->node and on direct links),
                        //   u64 tag, u64 seq, u64 incarnation (node->relay: the
                        //   destination's; else the sender's); frame: payload
  kPing = 6,            // node -> relay; both ways on direct links
  kPong = 7,            // relay -> node
  kLeave = 8,           // node -> relay
  kPeerLost = 9,        // relay -> node: i32 rank, u64 epoch; frame: reason
  kProbe = 10,          // relay -> node's listener: frame: nonce
  kProbeAck = 11,       // node -> relay: frame: the nonce its listener received
  kDirectHello = 12,    // dialer -> listener: i32 dialer rank, u64 dialer incarnation;
                        //   frames: run id, join token
  kDirectWelcome = 13,  // listener -> dialer: i32 listener rank
  kFence = 14,          // i32 peer (dst node->relay, src relay->node), u64 next seq,
                        //   u64 incarnation (as in DATA)
  kAck = 15,            // i32 peer (dst node->relay, src relay->node), u64 next seq
                        //   delivered from that peer, u64 incarnation (as in DATA)
  kLaneOffer = 16,      // listener -> dialer on a direct link: i32 bulk lane port;
                        //   frame: 16-byte lane key (bulk_lane.h)
};

constexpr std::uint8_t kLastType = 16;
// LANE_OFFER's key.
constexpr std::size_t kLaneKeyBytes = 16;

// Number of frames (after the ROUTER identity) each type must have.
inline int expectedFrames(Type type) {
  switch (type) {
    case Type::kHello:
      return 7;
    case Type::kMembership:
      return 4;
    case Type::kDirectHello:
      return 3;
    case Type::kLaneOffer:
    case Type::kReject:
    case Type::kData:
    case Type::kPeerLost:
    case Type::kProbe:
    case Type::kProbeAck:
      return 2;
    case Type::kWelcome:
    case Type::kPing:
    case Type::kPong:
    case Type::kLeave:
    case Type::kDirectWelcome:
    case Type::kFence:
    case Type::kAck:
      return 1;
  }
  return -1;
}

// Size of header frame 0 for each type.
inline std::size_t headerSize(Type type) {
  switch (type) {
    case Type::kDirectWelcome:
    case Type::kLaneOffer:
      return 2 + 4;
    case Type::kHello:
    case Type::kDirectHello:
      return 2 + 4 + 8;
    case Type::kWelcome:
      return 2 + 4 + 4 + 8;
    case Type::kMembership:
      return 2 + 8 + 4;
    case Type::kData:
      return 2 + 4 + 8 + 8 + 8;
    case Type::kFence:
    case Type::kAck:
      return 2 + 4 + 8 + 8;
    case Type::kPeerLost:
      return 2 + 4 + 8;
    case Type::kReject:
    case Type::kPing:
    case Type::kPong:
    case Type::kLeave:
    case Type::kProbe:
    case Type::kProbeAck:
      return 2;
  }
  return 0;
}

inline bool knownType(std::uint8_t t) {
  return t >= 1 && t <= kLastType;
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
    putLe(buf_ + size_, v, bytes);
    size_ += static_cast<std::size_t>(bytes);
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
    const std::uint64_t v = getLe(data_ + pos_, bytes);
    pos_ += static_cast<std::size_t>(bytes);
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
// Longest advertised endpoint; size of a probe nonce; of a raw CURVE key.
constexpr std::size_t kMaxEndpointBytes = 256;
// Host identities (HELLO, the directory): which members share a host.
constexpr std::size_t kMaxHostIdentityBytes = 64;
constexpr std::size_t kNonceBytes = 16;
constexpr std::size_t kCurveKeyBytes = 32;

// True for an endpoint another host can dial: "tcp://HOST:PORT" with a
// non-wildcard host and a port in 1..65535.
inline bool isDialableEndpoint(const std::string& endpoint) {
  if (endpoint.size() > kMaxEndpointBytes || endpoint.rfind("tcp://", 0) != 0) return false;
  const std::string rest = endpoint.substr(6);
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= rest.size()) return false;
  const std::string host = rest.substr(0, colon);
  const std::string port = rest.substr(colon + 1);
  if (host == "*" || host == "0.0.0.0" || host == "[::]" || host == "::") return false;
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
  const long p = std::stol(port);
  return p >= 1 && p <= 65535;
}

// MEMBERSHIP's directory: for each rank, where it accepts direct connections
// (empty: it does not, or the relay could not reach it), its raw CURVE
// public key (empty without CURVE), where it accepts direct connections from
// members on its own host (not probed; empty: it does not) and the identity
// of that host (empty: unknown). Per rank: u16 endpoint length, endpoint, u8
// key length (0 or 32), key, u16 same-host endpoint length, same-host
// endpoint, u8 host identity length, host identity.
struct DirectoryEntry {
  std::string endpoint;
  std::string key;
  std::string local;
  std::string host;
};

inline std::string encodeDirectory(const std::vector<DirectoryEntry>& entries) {
  std::string out;
  for (const auto& e : entries) {
    out += static_cast<char>(e.endpoint.size() & 0xff);
    out += static_cast<char>(e.endpoint.size() >> 8);
    out += e.endpoint;
    out += static_cast<char>(e.key.size());
    out += e.key;
    out += static_cast<char>(e.local.size() & 0xff);
    out += static_cast<char>(e.local.size() >> 8);
    out += e.local;
    out += static_cast<char>(e.host.size());
    out += e.host;
  }
  return out;
}

inline bool decodeDirectory(const zmq::message_t& frame, int worldSize,
                            std::vector<DirectoryEntry>* entries, std::string* why) {
  const auto* p = static_cast<const std::uint8_t*>(frame.data());
  const std::size_t n = frame.size();
  std::size_t pos = 0;
  entries->assign(worldSize, DirectoryEntry{});
  // One length-prefixed field (u16 or u8 length) of rank r into `out`: at
  // most `limit` bytes (a key: exactly 0 or kCurveKeyBytes), and an endpoint
  // must be dialable.
  enum class Field { kEndpoint, kKey, kHost };
  auto read = [&](int r, Field field, const char* what, std::string* out) {
    const std::size_t prefix = field == Field::kEndpoint ? 2 : 1;
    if (pos + prefix > n) {
      *why = "directory truncated at rank " + std::to_string(r) + "'s " + what;
      return false;
    }
    const std::size_t len = prefix == 2 ? p[pos] | (std::size_t{p[pos + 1]} << 8) : p[pos];
    pos += prefix;
    const bool sizeOk = field == Field::kEndpoint ? len <= kMaxEndpointBytes
                        : field == Field::kKey    ? len == 0 || len == kCurveKeyBytes
                                                  : len <= kMaxHostIdentityBytes;
    if (!sizeOk || pos + len > n) {
      *why = std::string("directory ") + what + " of rank " + std::to_string(r) + " is malformed";
      return false;
    }
    out->assign(reinterpret_cast<const char*>(p + pos), len);
    pos += len;
    if (field == Field::kEndpoint && !out->empty() && !isDialableEndpoint(*out)) {
      *why =
          std::string("directory ") + what + " of rank " + std::to_string(r) + " is not dialable";
      return false;
    }
    return true;
  };
  for (int r = 0; r < worldSize; ++r) {
    DirectoryEntry& e = (*entries)[r];
    if (!read(r, Field::kEndpoint, "endpoint", &e.endpoint) ||
        !read(r, Field::kKey, "key", &e.key) ||
        !read(r, Field::kEndpoint, "same-host endpoint", &e.local) ||
        !read(r, Field::kHost, "host identity", &e.host)) {
      return false;
    }
  }
  if (pos != n) {
    *why = "directory has " + std::to_string(n - pos) + " trailing bytes";
    return false;
  }
  return true;
}

// MEMBERSHIP's incarnations: u64 per rank, the relay epoch at which the
// rank's current node was admitted (0 for the first world).
inline std::string encodeIncarnations(const std::vector<std::uint64_t>& incarnations) {
  std::string out(incarnations.size() * 8, '\0');
  for (std::size_t r = 0; r < incarnations.size(); ++r) {
    putLe(reinterpret_cast<std::uint8_t*>(out.data()) + 8 * r, incarnations[r], 8);
  }
  return out;
}

inline bool decodeIncarnations(const zmq::message_t& frame, int worldSize,
                               std::vector<std::uint64_t>* incarnations, std::string* why) {
  if (worldSize < 0 || frame.size() != static_cast<std::size_t>(worldSize) * 8) {
    *why = "incarnations frame of " + std::to_string(frame.size()) + " bytes for a world of " +
           std::to_string(worldSize);
    return false;
  }
  const auto* p = static_cast<const std::uint8_t*>(frame.data());
  incarnations->assign(worldSize, 0);
  for (int r = 0; r < worldSize; ++r) (*incarnations)[r] = getLe(p + 8 * r, 8);
  return true;
}

// A message fully parsed and validated, as the relay and the node read it
// before acting on it (zmq_relay.cpp handle/hello/data, zmq_mesh.cpp handle,
// handleListener, handleDialer). Fields not used by `type` stay default.
struct ParsedMessage {
  Type type = Type::kPing;
  std::int32_t rank = -1;  // HELLO: requested; WELCOME, DIRECT_*: rank; DATA/FENCE/PEER_LOST: peer
  std::int32_t worldSize = 0;
  std::uint64_t epoch = 0;        // MEMBERSHIP, PEER_LOST
  std::uint64_t tag = 0;          // DATA
  std::uint64_t seq = 0;          // DATA: seq; FENCE: next seq
  std::uint64_t incarnation = 0;  // HELLO: resume; WELCOME, DATA, FENCE
  std::string alive;              // MEMBERSHIP
  std::vector<DirectoryEntry> directory;
  std::vector<std::uint64_t> incarnations;
  std::vector<std::string> strings;  // run id, token, endpoint, key, reason, nonce
  std::size_t payloadBytes = 0;      // DATA
};

// Largest world a MEMBERSHIP may announce (one alive byte per rank must be there).
constexpr std::int32_t kMaxWorldSize = 1 << 20;

// Parses frames (after any ROUTER identity) into `out`. Pure: no sockets, no
// state; false with `why` on any malformed input, never throws.
inline bool parseMessage(const zmq::message_t* frames, std::size_t count, ParsedMessage* out,
                         std::string* why) {
  if (!checkHeader(frames, count, &out->type, why)) return false;
  HeaderReader reader(frames[0]);
  auto str = [&](std::size_t i, std::size_t limit, const char* what) {
    if (frames[i].size() > limit) {
      *why = std::string(what) + " of " + std::to_string(frames[i].size()) + " bytes";
      return false;
    }
    out->strings.push_back(frames[i].to_string());
    return true;
  };
  switch (out->type) {
    case Type::kHello:
      out->rank = reader.i32();
      out->incarnation = reader.u64();
      if (!str(1, kMaxStringBytes, "run id") || !str(2, kMaxStringBytes, "join token") ||
          !str(3, kMaxEndpointBytes, "advertised endpoint") ||
          !str(4, kCurveKeyBytes, "CURVE key") ||
          !str(5, kMaxEndpointBytes, "same-host endpoint") ||
          !str(6, kMaxHostIdentityBytes, "host identity")) {
        return false;
      }
      if (!out->strings[3].empty() && out->strings[3].size() != kCurveKeyBytes) {
        *why = "CURVE key of " + std::to_string(out->strings[3].size()) + " bytes";
        return false;
      }
      if (!out->strings[4].empty() && !isDialableEndpoint(out->strings[4])) {
        *why = "same-host endpoint '" + out->strings[4] + "' is not dialable";
        return false;
      }
      return true;
    case Type::kWelcome:
      out->rank = reader.i32();
      out->worldSize = reader.i32();
      out->incarnation = reader.u64();
      if (out->worldSize < 1 || out->rank < 0 || out->rank >= out->worldSize) {
        *why = "WELCOME for rank " + std::to_string(out->rank) + " of " +
               std::to_string(out->worldSize);
        return false;
      }
      return true;
    case Type::kReject:
      out->strings.push_back(frames[1].to_string().substr(0, kMaxStringBytes));
      return true;
    case Type::kMembership: {
      out->epoch = reader.u64();
      out->worldSize = reader.i32();
      if (out->worldSize < 1 || out->worldSize > kMaxWorldSize ||
          frames[1].size() != static_cast<std::size_t>(out->worldSize)) {
        *why = "MEMBERSHIP for a world of " + std::to_string(out->worldSize) + " with " +
               std::to_string(frames[1].size()) + " alive bytes";
        return false;
      }
      out->alive = frames[1].to_string();
      return decodeDirectory(frames[2], out->worldSize, &out->directory, why) &&
             decodeIncarnations(frames[3], out->worldSize, &out->incarnations, why);
    }
    case Type::kData:
      out->rank = reader.i32();
      out->tag = reader.u64();
      out->seq = reader.u64();
      out->incarnation = reader.u64();
      out->payloadBytes = frames[1].size();
      return true;
    case Type::kFence:
    case Type::kAck:
      out->rank = reader.i32();
      out->seq = reader.u64();
      out->incarnation = reader.u64();
      return true;
    case Type::kPeerLost:
      out->rank = reader.i32();
      out->epoch = reader.u64();
      out->strings.push_back(frames[1].to_string().substr(0, kMaxStringBytes));
      return true;
    case Type::kProbe:
    case Type::kProbeAck:
      if (frames[1].size() != kNonceBytes) {
        *why = "nonce of " + std::to_string(frames[1].size()) + " bytes";
        return false;
      }
      out->strings.push_back(frames[1].to_string());
      return true;
    case Type::kDirectHello:
      out->rank = reader.i32();
      out->incarnation = reader.u64();
      return str(1, kMaxStringBytes, "run id") && str(2, kMaxStringBytes, "join token");
    case Type::kDirectWelcome:
      out->rank = reader.i32();
      return true;
    case Type::kLaneOffer:
      out->rank = reader.i32();  // the lane's port
      if (frames[1].size() != kLaneKeyBytes) {
        *why = "lane key of " + std::to_string(frames[1].size()) + " bytes";
        return false;
      }
      return true;
    case Type::kPing:
    case Type::kPong:
    case Type::kLeave:
      return true;
  }
  *why = "unknown message type";
  return false;
}

// Z85 text of a raw 32-byte CURVE key ("" for anything else).
inline std::string z85OfKey(const std::string& raw) {
  if (raw.size() != kCurveKeyBytes) return "";
  char text[41] = {};
  zmq_z85_encode(text, reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size());
  return text;
}

// Answers a ZAP request (RFC 27) on `zap`: status 200 with `userId` when
// admitted, else 400 with `refusal`. The request id (frame 1) is moved from
// `request` into the reply.
inline void sendZapReply(zmq::socket_t& zap, std::vector<zmq::message_t>& request, bool admitted,
                         const std::string& refusal, const std::string& userId) {
  std::vector<zmq::message_t> reply;
  reply.emplace_back(std::string("1.0"));
  if (request.size() >= 2) {
    reply.push_back(std::move(request[1]));
  } else {
    reply.emplace_back();
  }
  reply.emplace_back(std::string(admitted ? "200" : "400"));
  reply.emplace_back(admitted ? std::string("OK") : refusal);
  reply.emplace_back(admitted ? userId : std::string());  // user id
  reply.emplace_back();                                   // metadata
  zmq::send_multipart(zap, reply);
}

// Raw 32 bytes of a Z85 CURVE key ("" if it is not one).
inline std::string keyOfZ85(const std::string& z85) {
  if (z85.size() != 40) return "";
  std::uint8_t raw[kCurveKeyBytes];
  if (zmq_z85_decode(raw, z85.c_str()) == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(raw), sizeof(raw));
}

}  // namespace zmqwire
}  // namespace hearth
