// Writes a seed corpus for the zmq frame fuzzer into argv[1]: one valid
// message of every type (tests/fuzz/zmq_frame_fuzzer.cpp framing: u16 length
// + bytes per frame).
#include <cstdio>
#include <string>
#include <vector>

#include "zmq_wire.h"

using namespace hearth::zmqwire;

namespace {

std::string frame(const std::string& bytes) {
  std::string out;
  out += static_cast<char>(bytes.size() & 0xff);
  out += static_cast<char>(bytes.size() >> 8);
  return out + bytes;
}
std::string frame(const zmq::message_t& m) {
  return frame(m.to_string());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: zmq_frame_seeds DIR\n");
    return 2;
  }
  const std::string key(32, 'k');
  const std::string nonce(16, 'n');
  std::vector<DirectoryEntry> directory{{"tcp://127.0.0.1:30000", key, "", ""},
                                        {"", "", "tcp://127.0.0.1:30001", "boot/4026531992"},
                                        {"", key, "", ""}};
  std::vector<std::string> seeds;
  seeds.push_back(frame(HeaderWriter(Type::kHello).i32(-1).u64(kNewNode).message()) + frame("run") +
                  frame("token") + frame("tcp://10.0.0.1:5") + frame(key) +
                  frame("tcp://127.0.0.1:5") + frame("boot/4026531992"));
  seeds.push_back(frame(HeaderWriter(Type::kHello).i32(2).u64(3).message()) + frame("run") +
                  frame("token") + frame("") + frame("") + frame("") + frame(""));
  seeds.push_back(frame(HeaderWriter(Type::kWelcome).i32(1).i32(3).u64(2).message()));
  seeds.push_back(frame(HeaderWriter(Type::kReject).message()) + frame("bad join token"));
  seeds.push_back(frame(HeaderWriter(Type::kMembership).u64(4).i32(3).message()) +
                  frame(std::string("\x01\x00\x01", 3)) + frame(encodeDirectory(directory)) +
                  frame(encodeIncarnations({0, 4, 0})));
  seeds.push_back(frame(HeaderWriter(Type::kData).i32(1).u64(7).u64(9).u64(0).message()) +
                  frame("payload"));
  seeds.push_back(frame(HeaderWriter(Type::kPing).message()));
  seeds.push_back(frame(HeaderWriter(Type::kPong).message()));
  seeds.push_back(frame(HeaderWriter(Type::kLeave).message()));
  seeds.push_back(frame(HeaderWriter(Type::kPeerLost).i32(2).u64(1).message()) + frame("silent"));
  seeds.push_back(frame(HeaderWriter(Type::kProbe).message()) + frame(nonce));
  seeds.push_back(frame(HeaderWriter(Type::kProbeAck).message()) + frame(nonce));
  seeds.push_back(frame(HeaderWriter(Type::kDirectHello).i32(0).u64(0).message()) + frame("run") +
                  frame("token"));
  seeds.push_back(frame(HeaderWriter(Type::kDirectWelcome).i32(1).message()));
  seeds.push_back(frame(HeaderWriter(Type::kFence).i32(1).u64(12).u64(0).message()));
  seeds.push_back(frame(HeaderWriter(Type::kAck).i32(1).u64(12).u64(0).message()));
  seeds.push_back(frame(HeaderWriter(Type::kLaneOffer).i32(40000).message()) +
                  frame(std::string(kLaneKeyBytes, '\x07')));
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    const std::string path = std::string(argv[1]) + "/seed" + std::to_string(i);
    if (FILE* f = std::fopen(path.c_str(), "wb")) {
      std::fwrite(seeds[i].data(), 1, seeds[i].size(), f);
      std::fclose(f);
    }
  }
  return 0;
}
