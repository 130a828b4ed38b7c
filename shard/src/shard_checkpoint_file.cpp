// Atomic whole-file writes and positional reads for checkpoints (see
// shard_checkpoint_file.h).
#include "shard_checkpoint_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "hearth/shard/shard_checkpoint.h"

namespace hearth::ckpt {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& step, int error) {
  throw ShardCheckpointError(path + ": " + step + ": " + std::strerror(error));
}

std::string parentOf(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

void writeAll(int fd, const std::string& tempPath, const ByteSpan& piece) {
  const auto* data = static_cast<const char*>(piece.data);
  std::size_t left = piece.size;
  while (left > 0) {
    const ssize_t n = ::write(fd, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(tempPath, "write", errno);
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
}

void fsyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail(dir, "open directory for fsync", errno);
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    fail(dir, "fsync directory", error);
  }
  ::close(fd);
}

}  // namespace

void ensureDirectory(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (!std::filesystem::is_directory(dir)) {
    throw ShardCheckpointError(dir + ": cannot create checkpoint directory: " +
                               (error ? error.message() : std::string("not a directory")));
  }
}

void writeFileAtomically(const std::string& path, const std::vector<ByteSpan>& pieces) {
  std::string temp = path + ".tmp.XXXXXX";
  const int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) fail(path, "create temp file", errno);
  try {
    for (const ByteSpan& piece : pieces) writeAll(fd, temp, piece);
    if (::fsync(fd) != 0) fail(temp, "fsync", errno);
  } catch (...) {
    ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  if (::close(fd) != 0) {  // NFS and friends report deferred write errors here
    const int error = errno;
    ::unlink(temp.c_str());
    fail(temp, "close", error);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    fail(path, "rename " + temp, error);
  }
  fsyncDirectory(parentOf(path));
}

ReadOnlyFile::ReadOnlyFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(path, "open", errno);
  struct stat info {};
  if (::fstat(fd_, &info) != 0) {
    const int error = errno;
    ::close(fd_);
    fail(path, "stat", error);
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd_);
    throw ShardCheckpointError(path + ": not a regular file");
  }
  size_ = static_cast<std::uint64_t>(info.st_size);
}

ReadOnlyFile::~ReadOnlyFile() {
  if (fd_ >= 0) ::close(fd_);
}

void ReadOnlyFile::readAt(std::uint64_t offset, void* out, std::size_t size) const {
  auto* data = static_cast<char*>(out);
  while (size > 0) {
    const ssize_t n = ::pread(fd_, data, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(path_, "read", errno);
    }
    if (n == 0) {
      throw ShardCheckpointError(path_ + ": unexpected end of file at byte " +
                                 std::to_string(offset) + " (truncated while reading?)");
    }
    data += n;
    offset += static_cast<std::uint64_t>(n);
    size -= static_cast<std::size_t>(n);
  }
}

}  // namespace hearth::ckpt
