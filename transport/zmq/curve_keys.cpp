// CURVE key generation and key files. See curve_keys.h.
#include "hearth/transport/curve_keys.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace hearth {
namespace {

std::string modeString(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string errnoText() {
  return std::strerror(errno);
}

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

// Every non-comment, non-blank line of `path`, trimmed.
std::vector<std::string> keyLines(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in) throw CurveKeyError("cannot read " + std::string(what) + " '" + path + "'");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    lines.push_back(line);
  }
  return lines;
}

void checkKey(const std::string& key, const std::string& path, const char* what) {
  if (key.size() != kCurveKeyZ85Chars) {
    throw CurveKeyError(std::string(what) + " '" + path + "' is malformed: expected a " +
                        std::to_string(kCurveKeyZ85Chars) + "-character Z85 key, found " +
                        std::to_string(key.size()) + " characters");
  }
  if (!isCurveKeyZ85(key)) {
    throw CurveKeyError(std::string(what) + " '" + path + "' is malformed: not valid Z85");
  }
}

// The single key in a key file.
std::string readSingleKey(const std::string& path, const char* what) {
  const auto lines = keyLines(path, what);
  if (lines.size() != 1) {
    throw CurveKeyError(std::string(what) + " '" + path +
                        "' is malformed: expected one key line, " + "found " +
                        std::to_string(lines.size()));
  }
  checkKey(lines[0], path, what);
  return lines[0];
}

// Writes `text` to `path` with `mode`: temp file, fsync, then link (no
// overwrite) or rename (overwrite) into place, then fsync the directory.
void writeAtomically(const std::string& path, const std::string& text, mode_t mode,
                     bool overwrite) {
  if (!overwrite && ::access(path.c_str(), F_OK) == 0) {
    throw CurveKeyError("refusing to overwrite existing key file '" + path + "'");
  }
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) throw CurveKeyError("cannot create '" + tmp + "': " + errnoText());
  auto fail = [&](const std::string& why) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw CurveKeyError(why);
  };
  // The umask may have narrowed the mode; never widen a secret key though.
  if (::fchmod(fd, mode) != 0) fail("cannot chmod '" + tmp + "': " + errnoText());
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot write '" + tmp + "': " + errnoText());
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) fail("cannot fsync '" + tmp + "': " + errnoText());
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw CurveKeyError("cannot close '" + tmp + "': " + errnoText());
  }
  if (overwrite) {
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      const std::string why = errnoText();
      ::unlink(tmp.c_str());
      throw CurveKeyError("cannot rename '" + tmp + "' to '" + path + "': " + why);
    }
  } else {
    // link() fails if `path` appeared meanwhile, so nothing is ever clobbered.
    if (::link(tmp.c_str(), path.c_str()) != 0) {
      const std::string why = errno == EEXIST ? "it exists" : errnoText();
      ::unlink(tmp.c_str());
      throw CurveKeyError("refusing to overwrite key file '" + path + "': " + why);
    }
    ::unlink(tmp.c_str());
  }
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int dirFd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd >= 0) {
    ::fsync(dirFd);
    ::close(dirFd);
  }
}

}  // namespace

CurveKeyPair generateCurveKeyPair() {
  std::array<char, 41> pub{};
  std::array<char, 41> sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0) {
    throw CurveKeyError(std::string("cannot generate a CURVE keypair: ") +
                        zmq_strerror(zmq_errno()) + " (is libzmq built with CURVE support?)");
  }
  return CurveKeyPair{std::string(pub.data(), 40), std::string(sec.data(), 40)};
}

bool isCurveKeyZ85(const std::string& key) {
  if (key.size() != kCurveKeyZ85Chars) return false;
  std::array<std::uint8_t, 32> raw{};
  return zmq_z85_decode(raw.data(), key.c_str()) != nullptr;
}

std::string curvePublicKeyOf(const std::string& secretKeyZ85) {
  if (!isCurveKeyZ85(secretKeyZ85)) throw CurveKeyError("invalid Z85 CURVE secret key");
  std::array<char, 41> pub{};
  if (zmq_curve_public(pub.data(), secretKeyZ85.c_str()) != 0) {
    throw CurveKeyError(std::string("cannot derive a CURVE public key: ") +
                        zmq_strerror(zmq_errno()));
  }
  return std::string(pub.data(), 40);
}

void writeCurveSecretKeyFile(const std::string& path, const CurveKeyPair& pair, bool overwrite) {
  writeAtomically(path,
                  "# hearth CURVE secret key: keep private (mode 0600)\n# public key: " +
                      pair.publicKey + "\n" + pair.secretKey + "\n",
                  0600, overwrite);
}

void writeCurvePublicKeyFile(const std::string& path, const std::string& publicKey,
                             bool overwrite) {
  writeAtomically(path, "# hearth CURVE public key\n" + publicKey + "\n", 0644, overwrite);
}

CurveKeyPair readCurveSecretKeyFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw CurveKeyError("cannot read CURVE secret key file '" + path + "': " + errnoText());
  }
  if (!S_ISREG(st.st_mode)) {
    throw CurveKeyError("CURVE secret key file '" + path + "' is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    throw CurveKeyError("CURVE secret key file '" + path + "' has mode " + modeString(st.st_mode) +
                        ": it must not be accessible by group or others (chmod 600 " + path + ")");
  }
  CurveKeyPair pair;
  pair.secretKey = readSingleKey(path, "CURVE secret key file");
  pair.publicKey = curvePublicKeyOf(pair.secretKey);
  return pair;
}

std::string readCurvePublicKeyFile(const std::string& path) {
  return readSingleKey(path, "CURVE public key file");
}

std::string curvePublicKeyFromSpec(const std::string& spec) {
  const std::string key = trim(spec);
  if (key.size() == kCurveKeyZ85Chars && isCurveKeyZ85(key) && ::access(key.c_str(), F_OK) != 0) {
    return key;
  }
  return readCurvePublicKeyFile(spec);
}

std::vector<std::string> readCurveAllowlistFile(const std::string& path) {
  auto keys = keyLines(path, "CURVE allowlist file");
  for (const auto& key : keys) checkKey(key, path, "CURVE allowlist file");
  return keys;
}

bool isLoopbackEndpoint(const std::string& endpoint) {
  if (endpoint.rfind("ipc://", 0) == 0 || endpoint.rfind("inproc://", 0) == 0) return true;
  if (endpoint.rfind("tcp://", 0) != 0) return false;
  std::string host = endpoint.substr(6);
  // tcp://[source;]host:port — only the destination matters.
  const auto semi = host.find(';');
  if (semi != std::string::npos) host = host.substr(semi + 1);
  const auto colon = host.rfind(':');
  if (colon != std::string::npos) host = host.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost" || host == "::1") return true;
  in_addr v4{};
  return ::inet_pton(AF_INET, host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

}  // namespace hearth
