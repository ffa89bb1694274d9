#include "observability/event_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
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
  auto sink =
      std::make_unique<FileEventSink>(std::move(directory), max_file_bytes, max_files, Key{});
  sink->cut_torn_files();
  return sink;
}

void FileEventSink::cut_torn_files() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(directory_, ec)) {
    const std::string name = e.path().filename().string();
    if (!name.starts_with("events-") || !name.ends_with(".jsonl")) continue;
    auto cut = cut_torn_last_line(e.path());
    if (!cut.ok()) {
      log::error("events_file_unreadable",
                 {{"path", e.path().string()}, {"reason", cut.status().message()}});
    } else if (*cut > 0) {
      log::warn("events_torn_line_removed",
                {{"path", e.path().string()}, {"bytes", std::to_string(*cut)}});
    }
  }
}

FileEventSink::FileEventSink(std::filesystem::path directory, std::size_t max_file_bytes,
                             std::size_t max_files, Key)
    : directory_(std::move(directory)), max_file_bytes_(max_file_bytes), max_files_(max_files) {}

void FileEventSink::write(std::string_view lines, std::size_t /*count*/) {
  // Whole lines only, as many as fit in the current file; a chunk larger than max_file_bytes
  // is spread over several files (a single longer line gets a file of its own).
  while (!lines.empty()) {
    const std::size_t room = file_.valid() && file_bytes_ < max_file_bytes_
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
    if (!file_.valid()) {
      dropped_.fetch_add(part_lines, std::memory_order_relaxed);
      continue;
    }
    if (Status s = write_all(file_.get(), part, file_path_.string()); !s.ok()) {
      // Part of a line may have gone in (a full disk stores what fits): cut the file back to
      // its last whole line, drop these lines, and keep the file for the next try.
      if (::ftruncate(file_.get(), static_cast<off_t>(file_bytes_)) != 0) file_.reset();
      dropped_.fetch_add(part_lines, std::memory_order_relaxed);
      if (!failing_) {
        log::error("events_file_unwritable",
                   {{"path", file_path_.string()}, {"reason", s.message()}});
      }
      failing_ = true;
      continue;
    }
    if (failing_) {
      log::info("events_file_writable", {{"path", file_path_.string()}});
      failing_ = false;
    }
    file_bytes_ += part.size();
    written_.fetch_add(part_lines, std::memory_order_relaxed);
  }
}

// Lines go straight to the file with write(): nothing is buffered here, and what write() took
// survives the process being killed (the kernel has it).
void FileEventSink::flush(bool /*final*/) {}

void FileEventSink::rotate_if_needed(std::size_t next_bytes) {
  if (file_.valid() && file_bytes_ + next_bytes <= max_file_bytes_) return;
  file_.reset();
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  const auto path = directory_ / ("events-" + std::string(stamp) + "-" +
                                  std::to_string(++file_sequence_) + ".jsonl");
  file_.reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  file_path_ = path;
  file_bytes_ = 0;
  if (!file_.valid()) {
    if (!failing_) {
      log::error("events_file_unwritable",
                 {{"path", path.string()}, {"reason", std::strerror(errno)}});
    }
    failing_ = true;
    return;  // nothing new was made: no older file is deleted for it
  }
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
