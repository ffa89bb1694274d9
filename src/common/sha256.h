// SHA-256 through OpenSSL's EVP interface: streaming (a download is hashed as it arrives) or of
// a whole buffer or file. Digests are given as 64 lower-case hex characters.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "forklift/status.h"

namespace forklift {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(std::string_view bytes);
  // The digest of everything given so far; the object is then spent (update no more).
  std::string hex();

 private:
  struct Context;
  std::unique_ptr<Context> ctx_;
};

std::string sha256_hex(std::string_view bytes);
// The file's digest, read in pieces; an unreadable file is an error naming the file only.
Result<std::string> sha256_file(const std::filesystem::path& file);
// 64 lower-case hex characters.
bool is_sha256_hex(std::string_view text);

}  // namespace forklift
