// shard_checkpoint_file.h (internal) — the checkpoint's POSIX file I/O:
// atomic whole-file writes and bounded positional reads. Every error is a
// ShardCheckpointError naming the path and the errno text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hearth::ckpt {

struct ByteSpan {
  const void* data = nullptr;
  std::size_t size = 0;
};

// Creates dir (and parents) if missing; throws if it is not a directory.
void ensureDirectory(const std::string& dir);

// Writes the concatenation of pieces to path atomically: a temp file
// "<path>.tmp.XXXXXX" in the same directory, fsync, rename over path, fsync of
// the directory. On any error the temp file is removed, path is untouched,
// and ShardCheckpointError("<path>: <step>: <strerror>") is thrown.
void writeFileAtomically(const std::string& path, const std::vector<ByteSpan>& pieces);

// A read-only file descriptor (RAII) with exact positional reads.
class ReadOnlyFile {
 public:
  explicit ReadOnlyFile(const std::string& path);  // throws if it cannot open/stat
  ~ReadOnlyFile();
  ReadOnlyFile(const ReadOnlyFile&) = delete;
  ReadOnlyFile& operator=(const ReadOnlyFile&) = delete;

  std::uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Reads exactly size bytes at offset; throws on a short read or error.
  void readAt(std::uint64_t offset, void* out, std::size_t size) const;

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

}  // namespace hearth::ckpt
