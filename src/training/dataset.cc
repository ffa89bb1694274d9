#include "training/dataset.h"

#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>

#include "common/file_util.h"
#include "common/sha256.h"
#include "core/float_range.h"

namespace forklift::training {
namespace {

constexpr std::size_t kProblemsKept = 5;
constexpr std::size_t kMaxLineBytes = 1 << 20;
constexpr double kMaxLabel = 1e15;
// A string cell's bookkeeping beside its characters, for the memory bound.
constexpr std::uint64_t kStringOverhead = sizeof(std::string);

// A label or bool cell as text: true/false in the spellings CSV writers and PostgreSQL use.
bool bool_text(std::string_view s, double& out) {
  if (s == "true" || s == "t" || s == "True" || s == "TRUE") {
    out = 1;
  } else if (s == "false" || s == "f" || s == "False" || s == "FALSE") {
    out = 0;
  } else {
    return false;
  }
  return true;
}

bool is_missing_text(std::string_view s) {
  return s.empty() || s == "null" || s == "NULL" || s == "NA" || s == "nan" || s == "NaN";
}

bool parse_double(std::string_view s, double& out) {
  // from_chars for double is in libstdc++ 11; it rejects leading spaces and '+', as JSON does.
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

bool parse_int(std::string_view s, std::int64_t& out) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

// The data holds every feature as a double (Dataset::add), exact for integers up to 2^53; a
// larger one would come back changed, and from 2^63 - 512 on its conversion back to int64
// (Dataset::batch) is undefined.
constexpr std::int64_t kMaxExactInt = std::int64_t{1} << 53;

bool beyond_exact_double(std::int64_t n) {
  return n > kMaxExactInt || n < -kMaxExactInt;
}

Status exact_double_error(const std::string& at) {
  return InvalidArgument(at + " is beyond ±2^53, which training data cannot hold exactly");
}

// One JSON value as a feature of `spec`; an error names only the feature.
Status json_to_value(simdjson::dom::element v, const FeatureSpec& spec, Value& out) {
  const std::string at = "feature '" + spec.name + "'";
  switch (spec.type) {
    case ValueType::kFloat: {
      if (v.is_null()) {
        if (!spec.allow_missing) return InvalidArgument(at + " is null (missing is not allowed)");
        out = std::nan("");
        return Status::Ok();
      }
      double d = 0;
      if (v.get_double().get(d)) return InvalidArgument(at + " is not a number");
      if (!std::isfinite(d)) return InvalidArgument(at + " is not finite");
      if (beyond_float_range(d)) return float_range_error(at);  // as serving refuses it
      out = d;
      return Status::Ok();
    }
    case ValueType::kInt: {
      std::int64_t n = 0;
      if (v.get_int64().get(n)) return InvalidArgument(at + " is not an integer");
      if (beyond_exact_double(n)) return exact_double_error(at);
      out = n;
      return Status::Ok();
    }
    case ValueType::kBool: {
      bool b = false;
      if (v.get_bool().get(b)) return InvalidArgument(at + " is not true or false");
      out = b;
      return Status::Ok();
    }
    case ValueType::kString: {
      std::string_view s;
      if (v.get_string().get(s)) return InvalidArgument(at + " is not a string");
      out = std::string(s);
      return Status::Ok();
    }
    case ValueType::kFloatVector: {
      simdjson::dom::array a;
      if (v.get_array().get(a) || a.size() != spec.length) {
        return InvalidArgument(at + " is not an array of " + std::to_string(spec.length) +
                               " numbers");
      }
      std::vector<float> vec;
      vec.reserve(spec.length);
      for (simdjson::dom::element x : a) {
        double d = 0;
        if (x.get_double().get(d) || !std::isfinite(d)) {
          return InvalidArgument(at + " has an element that is not a finite number");
        }
        if (beyond_float_range(d)) return float_range_error("an element of " + at);
        vec.push_back(to_float_saturating(d));  // in range: FLT_MAX at most
      }
      out = std::move(vec);
      return Status::Ok();
    }
  }
  return InvalidArgument(at + " has an unknown type");
}

// One text cell (CSV, SQL) as a feature of `spec`.
Status text_to_value(std::string_view s, const FeatureSpec& spec, Value& out) {
  const std::string at = "feature '" + spec.name + "'";
  switch (spec.type) {
    case ValueType::kFloat: {
      if (is_missing_text(s)) {
        if (!spec.allow_missing) return InvalidArgument(at + " is empty (missing is not allowed)");
        out = std::nan("");
        return Status::Ok();
      }
      double d = 0;
      if (!parse_double(s, d) || !std::isfinite(d)) return InvalidArgument(at + " is not a number");
      if (beyond_float_range(d)) return float_range_error(at);  // as serving refuses it
      out = d;
      return Status::Ok();
    }
    case ValueType::kInt: {
      std::int64_t n = 0;
      if (!parse_int(s, n)) return InvalidArgument(at + " is not an integer");
      if (beyond_exact_double(n)) return exact_double_error(at);
      out = n;
      return Status::Ok();
    }
    case ValueType::kBool: {
      double b = 0;
      if (s == "1" || s == "0") {
        out = s == "1";
      } else if (bool_text(s, b)) {
        out = b == 1;
      } else {
        return InvalidArgument(at + " is not true or false");
      }
      return Status::Ok();
    }
    case ValueType::kString:
      out = std::string(s);
      return Status::Ok();
    case ValueType::kFloatVector: {
      simdjson::dom::parser parser;
      simdjson::dom::element e;
      if (parser.parse(s.data(), s.size()).get(e)) {
        return InvalidArgument(at + " is not a JSON array of numbers");
      }
      return json_to_value(e, spec, out);
    }
  }
  return InvalidArgument(at + " has an unknown type");
}

Status label_from_json(simdjson::dom::element v, const std::string& name, double& out) {
  if (v.get_double().get(out) || !std::isfinite(out) || std::fabs(out) > kMaxLabel) {
    // A boolean label (a classifier's) reads as 0 or 1.
    bool b = false;
    if (!v.get_bool().get(b)) {
      out = b ? 1 : 0;
      return Status::Ok();
    }
    return InvalidArgument("label '" + name + "' is not a finite number within 1e15");
  }
  return Status::Ok();
}

// Reads lines of at most kMaxLineBytes from a file descriptor; a longer line is reported as too
// long (and skipped up to its end), so a binary file cannot make one line of gigabytes.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  // The next line (without '\n'); false at the end. `too_long` when it was cut.
  bool next(std::string& line, bool& too_long) {
    line.clear();
    too_long = false;
    for (;;) {
      if (pos_ == end_) {
        if (!fill()) return !line.empty() || too_long;
      }
      const char* start = buffer_.data() + pos_;
      const void* nl = std::memchr(start, '\n', end_ - pos_);
      const std::size_t take = nl ? static_cast<const char*>(nl) - start : end_ - pos_;
      if (!too_long) {
        if (line.size() + take > kMaxLineBytes) {
          too_long = true;
          line.clear();
        } else {
          line.append(start, take);
        }
      }
      pos_ += take;
      if (nl) {
        ++pos_;
        return true;
      }
    }
  }
  std::uint64_t bytes() const { return bytes_; }

 private:
  bool fill() {
    for (;;) {
      const ssize_t n = ::read(fd_, buffer_.data(), buffer_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      pos_ = 0;
      end_ = static_cast<std::size_t>(n);
      bytes_ += static_cast<std::uint64_t>(n);
      return true;
    }
  }
  int fd_;
  std::vector<char> buffer_ = std::vector<char>(1 << 16);
  std::size_t pos_ = 0, end_ = 0;
  std::uint64_t bytes_ = 0;
};

// Splits one CSV line (RFC 4180 quoting; a quoted field may not span lines) into `cells`.
bool split_csv(const std::string& line, std::vector<std::string>& cells) {
  cells.clear();
  std::string cell;
  bool quoted = false, was_quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cell.push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cell.push_back(c);
      }
    } else if (c == '"' && cell.empty() && !was_quoted) {
      quoted = was_quoted = true;
    } else if (c == ',') {
      cells.push_back(std::move(cell));
      cell.clear();
      was_quoted = false;
    } else if (c == '\r' && i + 1 == line.size()) {
      // a CRLF file
    } else {
      cell.push_back(c);
    }
  }
  if (quoted) return false;
  cells.push_back(std::move(cell));
  return true;
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

Dataset::Dataset(std::shared_ptr<const Schema> schema) : schema_(std::move(schema)) {
  for (const auto& f : schema_->features) {
    if (f.type == ValueType::kString) {
      ++string_features_;
    } else {
      dense_cols_ += f.length;
    }
  }
}

void Dataset::add(std::span<const Value> values, double label) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    const Value& v = values[i];
    if (const auto* d = std::get_if<double>(&v)) {
      dense_.push_back(*d);
    } else if (const auto* n = std::get_if<std::int64_t>(&v)) {
      dense_.push_back(static_cast<double>(*n));
    } else if (const auto* b = std::get_if<bool>(&v)) {
      dense_.push_back(*b ? 1.0 : 0.0);
    } else if (const auto* vec = std::get_if<std::vector<float>>(&v)) {
      dense_.insert(dense_.end(), vec->begin(), vec->end());
    } else if (const auto* s = std::get_if<std::string>(&v)) {
      strings_.push_back(*s);
      bytes_ += s->size() + kStringOverhead;
    }
  }
  labels_.push_back(label);
  bytes_ += dense_cols_ * sizeof(double) + sizeof(double);
}

Batch Dataset::batch(const std::vector<std::size_t>& indices) const {
  Batch out(*schema_);
  out.reserve_rows(indices.size());
  for (std::size_t r : indices) {
    std::span<Value> row = out.add_row();
    const double* cell = dense_row(r);
    const std::string* text = strings_.data() + r * string_features_;
    for (std::size_t i = 0; i < schema_->features.size(); ++i) {
      const FeatureSpec& f = schema_->features[i];
      switch (f.type) {
        case ValueType::kFloat:
          row[i] = *cell++;
          break;
        case ValueType::kInt:
          row[i] = static_cast<std::int64_t>(*cell++);
          break;
        case ValueType::kBool:
          row[i] = *cell++ != 0;
          break;
        case ValueType::kString:
          row[i] = *text++;
          break;
        case ValueType::kFloatVector:
          row[i] = std::vector<float>(cell, cell + f.length);
          cell += f.length;
          break;
      }
    }
  }
  return out;
}

std::string Dataset::sha256() const {
  const auto bytes = [](const void* p, std::size_t n) {
    return std::string_view(static_cast<const char*>(p), n);
  };
  Sha256 h;
  for (std::size_t r = 0; r < rows(); ++r) {
    h.update(bytes(dense_row(r), dense_cols_ * sizeof(double)));
    for (std::size_t s = 0; s < string_features_; ++s) {
      const std::string& text = strings_[r * string_features_ + s];
      const std::uint64_t size = text.size();
      h.update(bytes(&size, sizeof(size)));
      h.update(text);
    }
    h.update(bytes(&labels_[r], sizeof(double)));
  }
  return h.hex();
}

RowReader::RowReader(std::shared_ptr<const Schema> schema, std::string label, DatasetLimits limits)
    : schema_(schema), label_(std::move(label)), limits_(limits), data_(std::move(schema)) {
  row_.resize(schema_->features.size());
}

bool RowReader::wants_more() {
  if (data_.rows() >= limits_.max_rows || data_.bytes() >= limits_.max_bytes) {
    report_.truncated = true;
    return false;
  }
  return true;
}

void RowReader::skip(const std::string& where, const std::string& why) {
  ++report_.rows_skipped;
  if (report_.problems.size() < kProblemsKept) report_.problems.push_back(where + ": " + why);
}

void RowReader::add_json(std::string_view line, const std::string& where) {
  ++report_.rows_read;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(line.data(), line.size()).get(root)) {
    return skip(where, std::string("not JSON: ") + simdjson::error_message(error));
  }
  simdjson::dom::object top;
  if (root.get_object().get(top)) return skip(where, "not a JSON object");
  simdjson::dom::object features = top;
  if (simdjson::dom::element inner; !top["features"].get(inner)) {
    if (inner.get_object().get(features)) return skip(where, "'features' is not an object");
  }
  simdjson::dom::element label_value;
  if (top[label_].get(label_value) && features[label_].get(label_value)) {
    return skip(where, "no label '" + label_ + "'");
  }
  double label = 0;
  if (Status s = label_from_json(label_value, label_, label); !s.ok()) {
    return skip(where, s.message());
  }
  add_object(features, label, where);
}

void RowReader::add_json_features(std::string_view features_json, std::string_view label_text,
                                  const std::string& where) {
  ++report_.rows_read;
  double label = 0;
  if ((!parse_double(label_text, label) || !std::isfinite(label) || std::fabs(label) > kMaxLabel) &&
      !bool_text(label_text, label)) {
    return skip(where, "label '" + label_ + "' is not a finite number within 1e15");
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::dom::object features;
  if (parser.parse(features_json.data(), features_json.size()).get(root) ||
      root.get_object().get(features)) {
    return skip(where, "'features' is not a JSON object");
  }
  add_object(features, label, where);
}

void RowReader::add_object(simdjson::dom::object features, double label, const std::string& where) {
  for (std::size_t i = 0; i < schema_->features.size(); ++i) {
    const FeatureSpec& f = schema_->features[i];
    simdjson::dom::element v;
    if (features[f.name].get(v)) {
      if (f.type == ValueType::kFloat && f.allow_missing) {
        row_[i] = std::nan("");
        continue;
      }
      return skip(where, "feature '" + f.name + "' is missing");
    }
    if (Status s = json_to_value(v, f, row_[i]); !s.ok()) return skip(where, s.message());
  }
  data_.add(row_, label);
}

void RowReader::add_cells(const std::vector<std::string_view>& names,
                          const std::vector<std::string_view>& cells, const std::string& where) {
  ++report_.rows_read;
  if (cells.size() != names.size()) {
    return skip(where, "has " + std::to_string(cells.size()) + " cells where the header names " +
                           std::to_string(names.size()));
  }
  bool have_label = false;
  double label = 0;
  std::vector<bool> seen(schema_->features.size(), false);
  for (std::size_t c = 0; c < names.size(); ++c) {
    if (names[c] == label_) {
      if ((!parse_double(cells[c], label) || !std::isfinite(label) ||
           std::fabs(label) > kMaxLabel) &&
          !bool_text(cells[c], label)) {
        return skip(where, "label '" + label_ + "' is not a finite number within 1e15");
      }
      have_label = true;
      continue;
    }
    const std::ptrdiff_t i = schema_->index_of(names[c]);
    if (i < 0) continue;  // a column the model does not use
    if (Status s = text_to_value(cells[c], schema_->features[i], row_[i]); !s.ok()) {
      return skip(where, s.message());
    }
    seen[i] = true;
  }
  if (!have_label) return skip(where, "no label '" + label_ + "'");
  for (std::size_t i = 0; i < seen.size(); ++i) {
    if (seen[i]) continue;
    const FeatureSpec& f = schema_->features[i];
    if (f.type == ValueType::kFloat && f.allow_missing) {
      row_[i] = std::nan("");
    } else {
      return skip(where, "feature '" + f.name + "' is missing");
    }
  }
  data_.add(row_, label);
}

Result<Dataset> RowReader::finish(const std::string& source) {
  if (data_.rows() == 0) {
    std::string why = source + ": no usable rows";
    if (!report_.problems.empty()) why += " (first problem: " + report_.problems.front() + ")";
    return InvalidArgument(why);
  }
  const double bad = static_cast<double>(report_.rows_skipped) /
                     static_cast<double>(std::max<std::size_t>(report_.rows_read, 1));
  if (bad > limits_.max_bad_share) {
    return InvalidArgument(source + ": " + std::to_string(report_.rows_skipped) + " of " +
                           std::to_string(report_.rows_read) +
                           " rows cannot be read, more than the " +
                           std::to_string(static_cast<int>(limits_.max_bad_share * 100 + 0.5)) +
                           "% allowed (first: " + report_.problems.front() + ")");
  }
  return std::move(data_);
}

Result<Dataset> read_files(const std::filesystem::path& root,
                           const std::vector<std::filesystem::path>& files,
                           std::shared_ptr<const Schema> schema, const std::string& label,
                           const DatasetLimits& limits, ReadReport& report,
                           const std::atomic<bool>* cancel) {
  RowReader reader(std::move(schema), label, limits);
  const std::uint64_t scan_limit = limits.max_bytes > (~0ull >> 3) ? ~0ull : limits.max_bytes * 4;
  std::uint64_t scanned = 0;
  std::string line;
  std::vector<std::string> cells;
  for (const auto& file : files) {
    auto opened = open_regular_within(root, file);
    if (!opened.ok()) return opened.status();
    const std::string name = file.filename().string();
    const bool csv = ends_with(name, ".csv");
    if (!csv && !ends_with(name, ".jsonl") && !ends_with(name, ".json")) {
      return InvalidArgument(file.string() + ": not a .jsonl, .json or .csv file");
    }
    LineReader lines(opened->fd.get());
    std::vector<std::string> header;
    std::vector<std::string_view> names;
    std::size_t number = 0;
    bool too_long = false;
    while (reader.wants_more() && lines.next(line, too_long)) {
      if (cancel && cancel->load(std::memory_order_relaxed)) return Unavailable("cancelled");
      if (scanned + lines.bytes() > scan_limit) {
        reader.report().truncated = true;
        break;
      }
      ++number;
      // A UTF-8 byte order mark (spreadsheet exports) is not part of the first cell.
      if (number == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
      const std::string where = name + ":" + std::to_string(number);
      if (too_long) {
        ++reader.report().rows_read;
        reader.skip(where, "longer than 1 MiB");
        continue;
      }
      if (line.empty() || (line.size() == 1 && line[0] == '\r')) continue;
      if (!csv) {
        reader.add_json(line, where);
        continue;
      }
      if (!split_csv(line, cells)) {
        ++reader.report().rows_read;
        reader.skip(where, "an unterminated quoted cell");
        continue;
      }
      if (header.empty()) {
        header = cells;
        names.assign(header.begin(), header.end());
        continue;
      }
      reader.add_cells(names, std::vector<std::string_view>(cells.begin(), cells.end()), where);
    }
    reader.report().bytes_read += lines.bytes();
    scanned += lines.bytes();
  }
  report = reader.report();
  auto data = reader.finish(files.size() == 1 ? files.front().filename().string()
                                              : std::to_string(files.size()) + " files");
  report = reader.report();
  return data;
}

Split split_rows(std::size_t rows, double holdout, std::uint64_t seed, bool last) {
  Split out;
  if (last) {
    const auto held = static_cast<std::size_t>(std::ceil(static_cast<double>(rows) * holdout));
    const std::size_t train = rows > held ? rows - held : 0;
    for (std::size_t i = 0; i < rows; ++i) (i < train ? out.train : out.holdout).push_back(i);
    return out;
  }
  const auto cut = static_cast<std::uint64_t>(holdout * 18446744073709551616.0);
  for (std::size_t i = 0; i < rows; ++i) {
    (splitmix64(seed * 0x100000001B3ull ^ i) < cut ? out.holdout : out.train).push_back(i);
  }
  return out;
}

}  // namespace forklift::training
