// Text from clients (process names, sites) is bytes: where it goes out as text (JSON, Prometheus labels)
// each well-formed UTF-8 sequence is kept and every other byte becomes U+FFFD. One definition of
// "well-formed" for every writer.
#pragma once

#include <cstddef>
#include <string_view>

namespace ttmem {

/// The length of the well-formed multi-byte UTF-8 sequence at s[i] (2 to 4: no overlongs, no surrogates,
/// at most U+10FFFF), or 0 when the bytes there are not one. For s[i] >= 0x80 only.
constexpr std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const std::size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
  if (len == 0 || c > 0xf4 || i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  }
  const auto c1 = static_cast<unsigned char>(s[i + 1]);
  if ((c == 0xe0 && c1 < 0xa0) || (c == 0xf0 && c1 < 0x90)) return 0;  // overlong
  if (c == 0xed && c1 >= 0xa0) return 0;                               // surrogate
  if (c == 0xf4 && c1 >= 0x90) return 0;                               // above U+10FFFF
  return len;
}

/// The bytes of U+FFFD, the replacement character.
inline constexpr std::string_view kReplacementCharacter = "\xef\xbf\xbd";

}  // namespace ttmem
