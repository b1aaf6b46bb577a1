// Little-endian byte writer and bounds-checked reader: the only place that lays out bytes on the wire.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ttmem::proto {

class WireWriter {
 public:
  explicit WireWriter(std::vector<std::uint8_t>& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) { put(v, 2); }
  void u32(std::uint32_t v) { put(v, 4); }
  void u64(std::uint64_t v) { put(v, 8); }
  void bytes(std::string_view s) { out_.insert(out_.end(), s.begin(), s.end()); }
  std::size_t size() const { return out_.size(); }

 private:
  void put(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  std::vector<std::uint8_t>& out_;
};

/// Stores little-endian values at a fixed position (event records are written in place).
inline void store_le(std::uint8_t* p, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

/// Stores a value as sizeof(T) little-endian bytes (one store on little-endian hosts).
template <typename T>
inline void store_le_word(std::uint8_t* p, T v) {
  if constexpr (std::endian::native == std::endian::big) {
    if constexpr (sizeof(T) == 2) v = static_cast<T>(__builtin_bswap16(v));
    if constexpr (sizeof(T) == 4) v = static_cast<T>(__builtin_bswap32(v));
    if constexpr (sizeof(T) == 8) v = static_cast<T>(__builtin_bswap64(v));
  }
  std::memcpy(p, &v, sizeof v);
}

/// Loads an n-byte little-endian value (n = 2, 4, 8) as one word: a plain load on little-endian hosts,
/// a load and a byte swap elsewhere.
template <typename T>
inline T load_le(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) {
    if constexpr (sizeof(T) == 2) v = static_cast<T>(__builtin_bswap16(v));
    if constexpr (sizeof(T) == 4) v = static_cast<T>(__builtin_bswap32(v));
    if constexpr (sizeof(T) == 8) v = static_cast<T>(__builtin_bswap64(v));
  }
  return v;
}

class WireReader {
 public:
  explicit WireReader(std::span<const std::uint8_t> in) : in_(in) {}
  bool u8(std::uint8_t& v) { return get(v, 1); }
  bool u16(std::uint16_t& v) { return get(v, 2); }
  bool u32(std::uint32_t& v) { return get(v, 4); }
  bool u64(std::uint64_t& v) { return get(v, 8); }
  bool bytes(std::string& s, std::size_t n) {
    if (remaining() < n) return false;
    s.assign(reinterpret_cast<const char*>(in_.data() + pos_), n);
    pos_ += n;
    return true;
  }
  std::size_t remaining() const { return in_.size() - pos_; }
  bool done() const { return pos_ == in_.size(); }

 private:
  template <typename T>
  bool get(T& v, int n) {
    if (remaining() < static_cast<std::size_t>(n)) return false;
    std::uint64_t x = 0;
    for (int i = 0; i < n; ++i) x |= static_cast<std::uint64_t>(in_[pos_ + i]) << (8 * i);
    v = static_cast<T>(x);
    pos_ += static_cast<std::size_t>(n);
    return true;
  }
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
};

/// Begins a frame: reserves the header; finish_frame() fills in the length.
inline std::size_t begin_frame(std::vector<std::uint8_t>& out, std::uint16_t type) {
  const std::size_t at = out.size();
  WireWriter w(out);
  w.u32(0);
  w.u16(type);
  w.u16(0);
  return at;
}

inline void finish_frame(std::vector<std::uint8_t>& out, std::size_t at) {
  store_le(out.data() + at, out.size() - at - 8, 4);
}

}  // namespace ttmem::proto

namespace ttmem::proto {

/// Minimal "{}" substitution for decoder messages, so the protocol (and libttmem) need no formatting library.
namespace text_detail {
inline std::string piece(std::string_view v) {
  return std::string(v);
}
inline std::string piece(const std::string& v) {
  return v;
}
inline std::string piece(const char* v) {
  return v;
}
template <typename T>
inline std::string piece(T v) {
  return std::to_string(+v);
}
}  // namespace text_detail

template <typename... Args>
std::string format_text(std::string_view pattern, const Args&... args) {
  const std::string pieces[] = {text_detail::piece(args)..., std::string()};
  std::string out;
  std::size_t next = 0;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '{' && i + 1 < pattern.size() && pattern[i + 1] == '}' && next < sizeof...(Args)) {
      out += pieces[next++];
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

}  // namespace ttmem::proto
