// posix_util.h: small POSIX helpers shared by the launcher.
//
// Contract:
//  - UniqueFd owns one file descriptor and closes it on destruction (move-only).
//  - writeAll() writes every byte, retrying on EINTR and waiting (poll, at most
//    `timeoutMs` in total) on EAGAIN; returns false when the fd is broken or the
//    timeout expires. It never throws.
//  - logLine() writes "hearthrun: <message>\n" to stderr in one write.
//  - describeWaitStatus() renders a waitpid() status as "exited with status 3"
//    or "killed by signal 9 (SIGKILL)"; signalName() gives "SIGKILL".
//  - resolveProgram() finds PROGRAM like execvp() would (names containing '/'
//    are taken as paths, others searched in `pathVar`), returning the path of an
//    executable regular file or nullopt.
// Thread-safety: all functions are safe to call from any thread; none of them
// is async-signal-safe except UniqueFd's destructor. Only writeAll() can block
// (bounded by its timeout).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hearth::launcher {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

inline constexpr int kDefaultWriteTimeoutMs = 10000;

bool writeAll(int fd, std::string_view data, int timeoutMs = kDefaultWriteTimeoutMs);
void logLine(const std::string& message);
std::string signalName(int signal);
std::string describeWaitStatus(int status);
std::optional<std::string> resolveProgram(const std::string& program, const std::string& pathVar);

}  // namespace hearth::launcher
