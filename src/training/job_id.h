// Training job ids: they sort by creation time and are unique across the processes that share a
// model repository (a job's staging directory is named after its id): 20261129-101500-7-3f9a
// (UTC time, a sequence number within the process, random bits).
#pragma once

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <random>
#include <string>

namespace forklift::training {

inline std::string new_job_id(std::uint64_t sequence) {
  char when[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(when, sizeof when, "%Y%m%d-%H%M%S", &tm);
  thread_local std::mt19937 rng(std::random_device{}());
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "%04x", static_cast<unsigned>(rng() & 0xffff));
  return std::string(when) + "-" + std::to_string(sequence) + "-" + suffix;
}

// Whether `id` can name a job (and so a staging directory): 1-64 of [A-Za-z0-9_-].
inline bool is_valid_job_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace forklift::training
