#include "observability/event_sink.h"

#include <algorithm>
#include <ctime>
#include <vector>

#include "observability/log.h"

namespace forklift {

Result<std::unique_ptr<FileEventSink>> FileEventSink::open(std::filesystem::path directory,
                                                           std::size_t max_file_bytes,
                                                           std::size_t max_files) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) {
    return Unavailable("cannot create the events directory '" + directory.string() +
                       "': " + ec.message());
  }
  return std::make_unique<FileEventSink>(std::move(directory), max_file_bytes, max_files, Key{});
}

FileEventSink::FileEventSink(std::filesystem::path directory, std::size_t max_file_bytes,
                             std::size_t max_files, Key)
    : directory_(std::move(directory)), max_file_bytes_(max_file_bytes), max_files_(max_files) {}

void FileEventSink::write(std::string_view lines, std::size_t /*count*/) {
  // Whole lines only, as many as fit in the current file; a chunk larger than max_file_bytes
  // is spread over several files (a single longer line gets a file of its own).
  while (!lines.empty()) {
    const std::size_t room = file_.is_open() && file_bytes_ < max_file_bytes_
                                 ? max_file_bytes_ - file_bytes_
                                 : max_file_bytes_;
    std::size_t take = 0;
    for (std::size_t nl; take < lines.size() &&
                         (nl = lines.find('\n', take)) != std::string_view::npos &&
                         (nl + 1 <= room || take == 0);) {
      take = nl + 1;
      if (take > room) break;  // one line longer than a whole file
    }
    if (take == 0) take = lines.size();  // no newline at all: write what there is
    const std::string_view part = lines.substr(0, take);
    lines.remove_prefix(take);
    const auto part_lines = static_cast<std::uint64_t>(std::count(part.begin(), part.end(), '\n'));
    rotate_if_needed(part.size());
    file_.write(part.data(), static_cast<std::streamsize>(part.size()));
    if (!file_) {
      dropped_.fetch_add(part_lines, std::memory_order_relaxed);
      file_.close();  // the next write starts a new file
      continue;
    }
    file_bytes_ += part.size();
    written_.fetch_add(part_lines, std::memory_order_relaxed);
  }
}

void FileEventSink::flush(bool /*final*/) {
  if (file_.is_open()) file_.flush();
}

void FileEventSink::rotate_if_needed(std::size_t next_bytes) {
  if (file_.is_open() && file_bytes_ + next_bytes <= max_file_bytes_) return;
  if (file_.is_open()) file_.close();
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  const auto path = directory_ / ("events-" + std::string(stamp) + "-" +
                                  std::to_string(++file_sequence_) + ".jsonl");
  file_.clear();
  file_.open(path, std::ios::app);
  file_bytes_ = 0;
  if (!file_) log::error("events_file_unwritable", {{"path", path.string()}});
  // Keep the newest max_files files.
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(directory_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("events-") && name.ends_with(".jsonl")) files.push_back(e.path());
  }
  if (files.size() <= max_files_) return;
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) {
    std::error_code e1, e2;
    return std::filesystem::last_write_time(a, e1) < std::filesystem::last_write_time(b, e2);
  });
  for (std::size_t i = 0; i + max_files_ < files.size(); ++i) {
    std::filesystem::remove(files[i], ec);
  }
}

}  // namespace forklift
