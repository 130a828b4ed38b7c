// CURVE on the zmq transport (docs/security.md): key files and their
// permissions, an encrypted world over the relay, wrong relay keys, the
// allowlist (ZAP), and the plaintext policy. Everything runs on 127.0.0.1.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "hearth/transport/curve_keys.h"
#include "hearth/transport/zmq_mesh.h"
#include "hearth/transport/zmq_relay.h"
#include "zmq_test_util.h"

namespace hearth {
namespace testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr char kRun[] = "curve-run";
constexpr char kToken[] = "curve-token";

// A fresh directory under /tmp, removed at the end of the test.
class TempDir : public zmqtest::TempDir {
 public:
  TempDir() : zmqtest::TempDir("hearth_curve_test") {}
};

unsigned modeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

void writeText(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
}

// Runs `fn`, expects it to throw E, and returns what().
template <typename E, typename Fn>
std::string thrownBy(Fn fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

std::unique_ptr<ZmqRelay> startRelay(int worldSize, const std::string& secretKeyFile,
                                     const std::string& allowKeysFile = "") {
  ZmqRelayOptions options;
  options.runId = kRun;
  options.worldSize = worldSize;
  options.joinToken = kToken;
  options.heartbeatTimeout = Millis(1500);
  options.curveSecretKeyFile = secretKeyFile;
  options.allowKeysFile = allowKeysFile;
  options.log = [](const std::string&) {};
  auto relay = std::make_unique<ZmqRelay>(options);
  relay->start();
  return relay;
}

ZmqMeshOptions nodeOptions(const ZmqRelay& relay, Millis joinTimeout = Millis(10000)) {
  ZmqMeshOptions options;
  options.relayEndpoint = relay.endpoint();
  options.runId = kRun;
  options.joinToken = kToken;
  options.relayPublicKey = relay.publicKey();
  options.joinTimeout = joinTimeout;
  options.heartbeatInterval = Millis(100);
  options.heartbeatTimeout = Millis(1500);
  return options;
}

// A keypair written as dir/name.key + dir/name.pub.
CurveKeyPair makeKeys(const TempDir& dir, const std::string& name) {
  const auto pair = generateCurveKeyPair();
  writeCurveSecretKeyFile(dir.file(name + ".key"), pair, false);
  writeCurvePublicKeyFile(dir.file(name + ".pub"), pair.publicKey, false);
  return pair;
}

// ---- keys and key files ----

TEST(CurveKeys, GeneratedPairIsConsistent) {
  const auto pair = generateCurveKeyPair();
  EXPECT_TRUE(isCurveKeyZ85(pair.publicKey));
  EXPECT_TRUE(isCurveKeyZ85(pair.secretKey));
  EXPECT_EQ(curvePublicKeyOf(pair.secretKey), pair.publicKey);
  EXPECT_NE(generateCurveKeyPair().secretKey, pair.secretKey);
}

TEST(CurveKeys, SecretKeyFileIs0600AndRoundTrips) {
  TempDir dir;
  ::umask(022);
  const auto pair = makeKeys(dir, "node");
  EXPECT_EQ(modeOf(dir.file("node.key")), 0600u);
  EXPECT_EQ(modeOf(dir.file("node.pub")), 0644u);
  const auto read = readCurveSecretKeyFile(dir.file("node.key"));
  EXPECT_EQ(read.secretKey, pair.secretKey);
  EXPECT_EQ(read.publicKey, pair.publicKey);
  EXPECT_EQ(readCurvePublicKeyFile(dir.file("node.pub")), pair.publicKey);
  EXPECT_EQ(curvePublicKeyFromSpec(dir.file("node.pub")), pair.publicKey);
  EXPECT_EQ(curvePublicKeyFromSpec(pair.publicKey), pair.publicKey);
  // No temporary files are left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.file("")),
                          std::filesystem::directory_iterator()),
            2);
}

TEST(CurveKeys, RefusesToOverwriteUnlessAsked) {
  TempDir dir;
  const auto first = makeKeys(dir, "k");
  const auto second = generateCurveKeyPair();
  const auto what =
      thrownBy<CurveKeyError>([&] { writeCurveSecretKeyFile(dir.file("k.key"), second, false); });
  EXPECT_NE(what.find(dir.file("k.key")), std::string::npos) << what;
  EXPECT_EQ(readCurveSecretKeyFile(dir.file("k.key")).secretKey, first.secretKey);
  writeCurveSecretKeyFile(dir.file("k.key"), second, true);
  EXPECT_EQ(readCurveSecretKeyFile(dir.file("k.key")).secretKey, second.secretKey);
  EXPECT_EQ(modeOf(dir.file("k.key")), 0600u);
}

TEST(CurveKeys, GroupOrWorldReadableSecretKeyIsRefused) {
  TempDir dir;
  makeKeys(dir, "k");
  for (mode_t mode : {0644, 0640, 0604}) {
    ASSERT_EQ(::chmod(dir.file("k.key").c_str(), mode), 0);
    const auto what = thrownBy<CurveKeyError>([&] { readCurveSecretKeyFile(dir.file("k.key")); });
    EXPECT_NE(what.find(dir.file("k.key")), std::string::npos) << what;
    char octal[8];
    std::snprintf(octal, sizeof(octal), "%04o", static_cast<unsigned>(mode));
    EXPECT_NE(what.find(octal), std::string::npos) << what;
  }
  ASSERT_EQ(::chmod(dir.file("k.key").c_str(), 0400), 0);
  EXPECT_NO_THROW(readCurveSecretKeyFile(dir.file("k.key")));
}

TEST(CurveKeys, MalformedKeyFilesAreRefusedNamingTheFile) {
  TempDir dir;
  const auto good = generateCurveKeyPair();
  std::string badZ85 = good.publicKey;
  badZ85[5] = '~';  // not in the Z85 alphabet
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"short.pub", "abc\n"},
      {"long.pub", good.publicKey + "x\n"},
      {"badz85.pub", badZ85 + "\n"},
      {"two.pub", good.publicKey + "\n" + good.publicKey + "\n"},
      {"empty.pub", "# only a comment\n"},
  };
  for (const auto& [name, text] : cases) {
    writeText(dir.file(name), text, 0600);
    const auto what = thrownBy<CurveKeyError>([&] { readCurvePublicKeyFile(dir.file(name)); });
    EXPECT_NE(what.find(dir.file(name)), std::string::npos) << name << ": " << what;
    EXPECT_NE(what.find("malformed"), std::string::npos) << name << ": " << what;
    // The same content as a secret key file is refused as well.
    EXPECT_THROW(readCurveSecretKeyFile(dir.file(name)), CurveKeyError) << name;
  }
  writeText(dir.file("allow"), "# nodes\n" + good.publicKey + "\n\n" + badZ85 + "\n", 0644);
  const auto what = thrownBy<CurveKeyError>([&] { readCurveAllowlistFile(dir.file("allow")); });
  EXPECT_NE(what.find(dir.file("allow")), std::string::npos) << what;
  EXPECT_THROW(readCurvePublicKeyFile(dir.file("missing.pub")), CurveKeyError);
  EXPECT_THROW(curvePublicKeyFromSpec("not-a-key-and-not-a-file"), CurveKeyError);
}

TEST(CurveKeys, LoopbackEndpoints) {
  EXPECT_TRUE(isLoopbackEndpoint("tcp://127.0.0.1:5555"));
  EXPECT_TRUE(isLoopbackEndpoint("tcp://127.1.2.3:0"));
  EXPECT_TRUE(isLoopbackEndpoint("tcp://localhost:5555"));
  EXPECT_TRUE(isLoopbackEndpoint("tcp://[::1]:5555"));
  EXPECT_TRUE(isLoopbackEndpoint("ipc:///tmp/relay"));
  EXPECT_TRUE(isLoopbackEndpoint("inproc://relay"));
  EXPECT_FALSE(isLoopbackEndpoint("tcp://0.0.0.0:5555"));
  EXPECT_FALSE(isLoopbackEndpoint("tcp://*:5555"));
  EXPECT_FALSE(isLoopbackEndpoint("tcp://198.18.0.1:29600"));
  EXPECT_FALSE(isLoopbackEndpoint("tcp://relay.example.org:5555"));
  EXPECT_FALSE(isLoopbackEndpoint("tcp://127.0.0.1.example.org:5555"));
}

// ---- CURVE over the relay ----

TEST(ZmqCurve, WorldOfTwoRoundTripsEncrypted) {
  TempDir dir;
  makeKeys(dir, "relay");
  auto relay = startRelay(2, dir.file("relay.key"));
  EXPECT_EQ(relay->publicKey(), readCurvePublicKeyFile(dir.file("relay.pub")));
  const auto options = nodeOptions(*relay);
  auto a = std::async(std::launch::async, [&] { return connectZmqMesh(options); });
  auto b = std::async(std::launch::async, [&] { return connectZmqMesh(options); });
  auto m0 = a.get();
  auto m1 = b.get();
  if (m0->rank() != 0) std::swap(m0, m1);
  ASSERT_EQ(m0->rank(), 0);
  MeshBytes big(1 << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 31 + 7);
  m0->send(1, 7, big, Millis(5000));
  EXPECT_EQ(m1->recv(0, 7, Millis(5000)), big);
  m1->send(0, 8, MeshBytes{1, 2, 3}, Millis(5000));
  EXPECT_EQ(m0->recv(1, 8, Millis(5000)), (MeshBytes{1, 2, 3}));
  EXPECT_EQ(zmqtest::forwardedOnceAtLeast(*relay, 2), 2u);
}

TEST(ZmqCurve, WrongRelayKeyIsRejectedPromptly) {
  TempDir dir;
  makeKeys(dir, "relay");
  auto relay = startRelay(1, dir.file("relay.key"));
  auto options = nodeOptions(*relay, Millis(10000));
  options.relayPublicKey = generateCurveKeyPair().publicKey;
  const auto start = Clock::now();
  const auto what = thrownBy<MeshRejected>([&] { connectZmqMesh(options); });
  EXPECT_LT(msSince(start), 3000);  // not the 10 s join timeout
  EXPECT_NE(what.find("relay public key"), std::string::npos) << what;
  EXPECT_NE(what.find(relay->endpoint()), std::string::npos) << what;
  EXPECT_EQ(relay->stats().joined, 0u);
}

TEST(ZmqCurve, PlaintextNodeIsRejectedByCurveRelay) {
  TempDir dir;
  makeKeys(dir, "relay");
  auto relay = startRelay(1, dir.file("relay.key"));
  auto options = nodeOptions(*relay, Millis(10000));
  options.relayPublicKey.clear();
  const auto start = Clock::now();
  const auto what = thrownBy<MeshRejected>([&] { connectZmqMesh(options); });
  EXPECT_LT(msSince(start), 3000);
  EXPECT_NE(what.find("mechanism mismatch"), std::string::npos) << what;
  EXPECT_EQ(relay->stats().joined, 0u);
}

TEST(ZmqCurve, CurveNodeIsRejectedByPlaintextRelay) {
  ZmqRelayOptions relayOptions;
  relayOptions.runId = kRun;
  relayOptions.worldSize = 1;
  relayOptions.joinToken = kToken;
  relayOptions.log = [](const std::string&) {};
  ZmqRelay relay(relayOptions);
  relay.start();
  auto options = nodeOptions(relay, Millis(10000));
  options.relayPublicKey = generateCurveKeyPair().publicKey;
  const auto start = Clock::now();
  const auto what = thrownBy<MeshRejected>([&] { connectZmqMesh(options); });
  EXPECT_LT(msSince(start), 3000);
  // Either a mechanism mismatch or an unexplained close, depending on timing.
  EXPECT_TRUE(what.find("does not use CURVE") != std::string::npos ||
              what.find("mechanism mismatch") != std::string::npos)
      << what;
}

TEST(ZmqCurve, AllowlistAdmitsListedKeysOnly) {
  TempDir dir;
  makeKeys(dir, "relay");
  const auto listed = makeKeys(dir, "listed");
  makeKeys(dir, "stranger");
  writeText(dir.file("allow"), "# admitted nodes\n" + listed.publicKey + "\n", 0644);
  auto relay = startRelay(1, dir.file("relay.key"), dir.file("allow"));

  auto stranger = nodeOptions(*relay, Millis(10000));
  stranger.curveSecretKeyFile = dir.file("stranger.key");
  const auto start = Clock::now();
  const auto what = thrownBy<MeshRejected>([&] { connectZmqMesh(stranger); });
  EXPECT_LT(msSince(start), 3000);  // promptly, not after the join timeout
  EXPECT_NE(what.find("allowlist"), std::string::npos) << what;
  EXPECT_NE(what.find("400"), std::string::npos) << what;
  // An ephemeral key is not listed either.
  auto ephemeral = nodeOptions(*relay, Millis(10000));
  EXPECT_THROW(connectZmqMesh(ephemeral), MeshRejected);
  const auto refused = relay->stats();
  EXPECT_GE(refused.keysRefused, 2u);
  EXPECT_EQ(refused.joined, 0u);

  auto member = nodeOptions(*relay, Millis(5000));
  member.curveSecretKeyFile = dir.file("listed.key");
  auto mesh = connectZmqMesh(member);
  EXPECT_EQ(mesh->rank(), 0);
  mesh->send(0, 1, MeshBytes{9}, Millis(1000));
  EXPECT_EQ(mesh->recv(0, 1, Millis(1000)), MeshBytes{9});
  EXPECT_EQ(relay->stats().joined, 1u);
}

TEST(ZmqCurve, ListedKeyStillNeedsTheJoinToken) {
  TempDir dir;
  makeKeys(dir, "relay");
  const auto listed = makeKeys(dir, "listed");
  writeText(dir.file("allow"), listed.publicKey + "\n", 0644);
  auto relay = startRelay(1, dir.file("relay.key"), dir.file("allow"));
  auto options = nodeOptions(*relay, Millis(5000));
  options.curveSecretKeyFile = dir.file("listed.key");
  options.joinToken = "wrong";
  const auto what = thrownBy<MeshRejected>([&] { connectZmqMesh(options); });
  EXPECT_NE(what.find("bad join token"), std::string::npos) << what;
}

TEST(ZmqCurve, NodeRefusesUnsafeOrBadKeys) {
  TempDir dir;
  makeKeys(dir, "relay");
  makeKeys(dir, "node");
  auto relay = startRelay(1, dir.file("relay.key"));
  auto options = nodeOptions(*relay, Millis(1000));
  options.curveSecretKeyFile = dir.file("node.key");
  ASSERT_EQ(::chmod(dir.file("node.key").c_str(), 0644), 0);
  auto what = thrownBy<MeshUsageError>([&] { connectZmqMesh(options); });
  EXPECT_NE(what.find(dir.file("node.key")), std::string::npos) << what;
  EXPECT_NE(what.find("0644"), std::string::npos) << what;
  options.curveSecretKeyFile.clear();
  options.relayPublicKey = "too-short";
  EXPECT_THROW(connectZmqMesh(options), MeshUsageError);
}

// ---- plaintext policy ----

TEST(ZmqCurvePolicy, NodeRefusesPlaintextToNonLoopbackRelay) {
  ZmqMeshOptions options;
  options.relayEndpoint = "tcp://198.18.0.1:29600";  // never contacted
  options.runId = kRun;
  options.joinTimeout = Millis(200);
  const auto start = Clock::now();
  const auto what = thrownBy<MeshUsageError>([&] { connectZmqMesh(options); });
  EXPECT_LT(msSince(start), 100);
  EXPECT_NE(what.find("HEARTH_RELAY_PUBLIC_KEY"), std::string::npos) << what;
  EXPECT_NE(what.find("HEARTH_ALLOW_PLAINTEXT"), std::string::npos) << what;
  // Loopback relays may be plaintext (the ordinary zmq tests rely on it):
  // this one passes the policy and then times out joining (nothing listens).
  // (allowPlaintext on a non-loopback address is not exercised here: tests
  // send traffic to 127.0.0.1 only.)
  options.relayEndpoint = "tcp://127.0.0.1:1";
  EXPECT_THROW(connectZmqMesh(options), MeshTimeout);
}

TEST(ZmqCurvePolicy, RelayRefusesPlaintextOnNonLoopbackBind) {
  ZmqRelayOptions options;
  options.runId = kRun;
  options.bindEndpoint = "tcp://0.0.0.0:0";
  options.log = [](const std::string&) {};
  const auto what = thrownBy<std::runtime_error>([&] { ZmqRelay relay(options); });
  EXPECT_NE(what.find("--curve-secret-key"), std::string::npos) << what;
  EXPECT_NE(what.find("--allow-plaintext"), std::string::npos) << what;
  options.bindEndpoint = "tcp://127.0.0.1:0";
  options.allowKeysFile = "/nonexistent";
  EXPECT_THROW(ZmqRelay relay(options), std::invalid_argument);  // allowlist without CURVE
}

TEST(ZmqCurvePolicy, RelayBinaryRefusesPlaintextPublicBind) {
  const std::string command =
      std::string(HEARTH_RELAY_BIN) + " --bind tcp://0.0.0.0:0 --run-id r --world-size 1 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[256];
  while (std::fgets(buf, sizeof(buf), pipe) != nullptr) output += buf;
  const int status = ::pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << output;
  EXPECT_NE(output.find("refusing to bind"), std::string::npos) << output;
}

}  // namespace
}  // namespace testing
}  // namespace hearth
