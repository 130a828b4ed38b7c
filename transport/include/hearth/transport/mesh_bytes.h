// hearth/transport/mesh_bytes.h — the byte buffer a Mesh message travels in.
//
// A MeshBytes owns its bytes in one of two ways:
// - in a std::vector (what callers build: MeshBytes(n), MeshBytes(first,
//   last), MeshBytes{1, 2, 3}, or a moved-in std::vector, which is adopted
//   without copying);
// - as a foreign block that some other owner keeps alive (adopt(): a backend
//   hands out a received network message this way, so a recv costs no copy
//   and no allocation of the message size; forwarding it with isend is
//   zero-copy as well).
// Either way data()/size() give the bytes, which are writable and stay at
// the same address for the object's lifetime (moves keep the address). Copies
// are deep (into a vector). Not thread-safe: one object, one thread at a time.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

namespace hearth {

class MeshBytes {
 public:
  using value_type = std::uint8_t;
  using iterator = std::uint8_t*;
  using const_iterator = const std::uint8_t*;

  MeshBytes() = default;
  // n zero bytes.
  explicit MeshBytes(std::size_t n) : vector_(n) { pointAtVector(); }
  MeshBytes(std::size_t n, std::uint8_t fill) : vector_(n, fill) { pointAtVector(); }
  MeshBytes(std::initializer_list<std::uint8_t> bytes) : vector_(bytes) { pointAtVector(); }
  template <class It, class = typename std::iterator_traits<It>::iterator_category>
  MeshBytes(It first, It last) : vector_(first, last) {
    pointAtVector();
  }
  // Adopts the vector's buffer (no copy).
  MeshBytes(std::vector<std::uint8_t>&& bytes) : vector_(std::move(bytes)) {  // NOLINT: implicit
    pointAtVector();
  }

  // Wraps size bytes at data, kept alive by `owner` (released when the last
  // MeshBytes holding it goes away). The bytes must stay valid and unshared
  // for writing while owner lives.
  static MeshBytes adopt(std::uint8_t* data, std::size_t size, std::shared_ptr<void> owner) {
    MeshBytes bytes;
    bytes.data_ = data;
    bytes.size_ = size;
    bytes.owner_ = std::move(owner);
    return bytes;
  }

  MeshBytes(const MeshBytes& other) : MeshBytes(other.begin(), other.end()) {}
  MeshBytes& operator=(const MeshBytes& other) {
    if (this != &other) *this = MeshBytes(other);
    return *this;
  }
  MeshBytes(MeshBytes&& other) noexcept { *this = std::move(other); }
  MeshBytes& operator=(MeshBytes&& other) noexcept {
    if (this == &other) return *this;
    vector_ = std::move(other.vector_);  // a vector move keeps the buffer's address
    owner_ = std::move(other.owner_);
    data_ = other.data_;
    size_ = other.size_;
    other.vector_.clear();
    other.owner_.reset();
    other.data_ = nullptr;
    other.size_ = 0;
    return *this;
  }

  std::uint8_t* data() { return data_; }
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  iterator begin() { return data_; }
  iterator end() { return data_ + size_; }
  const_iterator begin() const { return data_; }
  const_iterator end() const { return data_ + size_; }
  std::uint8_t& operator[](std::size_t i) { return data_[i]; }
  std::uint8_t operator[](std::size_t i) const { return data_[i]; }
  // Bounds-checked: throws std::out_of_range past size().
  std::uint8_t at(std::size_t i) const {
    if (i >= size_) throw std::out_of_range("MeshBytes::at: index past the end");
    return data_[i];
  }

  // Keeps the first min(n, size()) bytes (no reallocation).
  void truncate(std::size_t n) { size_ = std::min(n, size_); }

  // True when the bytes live in a foreign block (adopt()), not a vector.
  bool adopted() const { return owner_ != nullptr; }

  // The bytes as a vector: moved out when they live in one, else copied.
  std::vector<std::uint8_t> toVector() && {
    if (owner_ == nullptr) {
      vector_.resize(size_);
      std::vector<std::uint8_t> out = std::move(vector_);
      *this = MeshBytes();
      return out;
    }
    std::vector<std::uint8_t> out(begin(), end());
    *this = MeshBytes();
    return out;
  }

  friend bool operator==(const MeshBytes& a, const MeshBytes& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
  }
  friend bool operator!=(const MeshBytes& a, const MeshBytes& b) { return !(a == b); }

 private:
  void pointAtVector() {
    data_ = vector_.data();
    size_ = vector_.size();
  }

  std::vector<std::uint8_t> vector_;
  std::shared_ptr<void> owner_;
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace hearth
