// A key (or name) from a file as an error message may show it: a plain name of 1 to 64 letters,
// digits, '_', '-' and '.', as manifests and specs use; anything else only by its length. An
// error never quotes arbitrary content of a file.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>

namespace forklift {

inline bool is_plain_key(const std::string& key) {
  return !key.empty() && key.size() <= 64 && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

inline std::string shown_key(const std::string& key) {
  return is_plain_key(key) ? key : "(a key of " + std::to_string(key.size()) + " characters)";
}

}  // namespace forklift
