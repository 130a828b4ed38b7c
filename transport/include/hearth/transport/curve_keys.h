// hearth/transport/curve_keys.h — CURVE (CurveZMQ) keys for the hearth
// transport: generation, key files, allowlists, and the loopback test used by
// the plaintext policy (docs/security.md).
//
// Contract
// - Keys are Z85 text, 40 characters (32 bytes). A keypair's public key is
//   always derivable from its secret key.
// - Key files: PREFIX.key holds the secret key, PREFIX.pub the public key,
//   each as one Z85 line; lines starting with '#' and blank lines are ignored,
//   any other content (more than one key, wrong length, invalid Z85) is an
//   error naming the file.
// - Secret key files are written with mode 0600, atomically (temporary file in
//   the same directory, fsync, then link/rename into place), so a crash never
//   leaves a partial or world-readable key. Reading a secret key file that is
//   accessible by group or others (mode & 077) fails, naming the file and its
//   mode, like ssh does.
// - Every failure throws CurveKeyError (a std::runtime_error) whose what()
//   names the file involved.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace hearth {

class CurveKeyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CurveKeyPair {
  std::string publicKey;  // Z85, 40 characters
  std::string secretKey;  // Z85, 40 characters
};

constexpr std::size_t kCurveKeyZ85Chars = 40;

// A fresh keypair (libzmq's zmq_curve_keypair, backed by libsodium).
CurveKeyPair generateCurveKeyPair();

// True if `key` is 40 characters of valid Z85 that decode to 32 bytes.
bool isCurveKeyZ85(const std::string& key);

// The public key of a Z85 secret key. Throws CurveKeyError if it is invalid.
std::string curvePublicKeyOf(const std::string& secretKeyZ85);

// Writes `pair.secretKey` to `path` with mode 0600 (atomically, see above).
// overwrite=false: throws if `path` exists.
void writeCurveSecretKeyFile(const std::string& path, const CurveKeyPair& pair, bool overwrite);
// Writes `publicKey` to `path` with mode 0644 (atomically).
void writeCurvePublicKeyFile(const std::string& path, const std::string& publicKey, bool overwrite);

// Reads a secret key file (checks permissions first) and derives its public key.
CurveKeyPair readCurveSecretKeyFile(const std::string& path);
// Reads a public key file.
std::string readCurvePublicKeyFile(const std::string& path);
// A Z85 public key given either literally or as the path of a .pub file.
std::string curvePublicKeyFromSpec(const std::string& spec);
// An allowlist: one Z85 public key per line, '#' comments and blank lines
// ignored; trailing text after the key on a line is not allowed.
std::vector<std::string> readCurveAllowlistFile(const std::string& path);

// True if a ZeroMQ endpoint can only be reached from this host: tcp:// with a
// host of localhost, 127.0.0.0/8 or ::1, and ipc:// or inproc://. Wildcards
// ("*", 0.0.0.0) and every other address are not loopback.
bool isLoopbackEndpoint(const std::string& endpoint);

}  // namespace hearth
