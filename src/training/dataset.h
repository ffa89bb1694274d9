// Training data in memory: rows of a model's features (in its schema) and their labels, with a
// hash of exactly what was read (the snapshot a version's lineage records).
//
// Numeric features (float, int, bool, float_vector) are stored as dense columns, string features
// as strings: a row costs its values, not a Value variant per cell.
#pragma once

#include <simdjson.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/status.h"
#include "forklift/types.h"

namespace forklift::training {

struct DatasetLimits {
  std::size_t max_rows = 1'000'000;
  std::uint64_t max_bytes = 1ull << 30;  // of the rows held in memory
  // Rows that cannot be read (bad JSON, a wrong type, a missing label) are skipped and counted;
  // beyond this share of the rows read, the data is refused as a whole.
  double max_bad_share = 0.01;
};

class Dataset {
 public:
  explicit Dataset(std::shared_ptr<const Schema> schema);

  const Schema& schema() const { return *schema_; }
  std::shared_ptr<const Schema> shared_schema() const { return schema_; }
  std::size_t rows() const { return labels_.size(); }
  std::size_t dense_columns() const { return dense_cols_; }
  bool has_strings() const { return string_features_ > 0; }
  // Row `r`'s numeric columns (dense_columns() of them; NaN is missing). Doubles, so an int
  // feature keeps its value; a trainer for the numeric runtimes rounds them to float as
  // serving does (runtimes/dense_rows.h).
  const double* dense_row(std::size_t r) const { return dense_.data() + r * dense_cols_; }
  double label(std::size_t r) const { return labels_[r]; }
  const std::vector<double>& labels() const { return labels_; }
  // Bytes the rows take in memory (what DatasetLimits::max_bytes bounds).
  std::uint64_t bytes() const { return bytes_; }

  // Appends one row: `values` in schema order, validated by the caller.
  void add(std::span<const Value> values, double label);
  // Rows `indices` as a Batch, the form a Model predicts from. The batch points at this
  // dataset's schema.
  Batch batch(const std::vector<std::size_t>& indices) const;

  // SHA-256 (hex) of the rows and labels in a canonical binary form: the same rows give the
  // same hash whatever file, format or query they came from.
  std::string sha256() const;

 private:
  std::shared_ptr<const Schema> schema_;
  std::size_t dense_cols_ = 0;
  std::size_t string_features_ = 0;
  std::vector<double> dense_;
  std::vector<std::string> strings_;  // string_features_ per row
  std::vector<double> labels_;
  std::uint64_t bytes_ = 0;
};

// What reading found besides the rows.
struct ReadReport {
  std::uint64_t bytes_read = 0;
  std::size_t rows_read = 0;
  std::size_t rows_skipped = 0;
  std::vector<std::string> problems;  // the first few skipped rows and why (no file content)
  bool truncated = false;             // stopped at max_rows
};

// Validates one row given as name -> value lookups. The label is a finite number within
// +-1e15; features follow the schema (a missing float feature is NaN only when allowed).
class RowReader {
 public:
  RowReader(std::shared_ptr<const Schema> schema, std::string label, DatasetLimits limits);
  Dataset& dataset() { return data_; }
  ReadReport& report() { return report_; }
  const DatasetLimits& limits() const { return limits_; }
  const std::string& label_name() const { return label_; }
  // Whether more rows may be added (false once max_rows or max_bytes is reached).
  bool wants_more();
  // Adds a row read from a JSON object (the features object itself, or one whose "features" is
  // it, with the label beside the features or at the top). `where` names it in problems.
  void add_json(std::string_view line, const std::string& where);
  // Adds a row from a features object as JSON text and the label as text (SQL results).
  void add_json_features(std::string_view features_json, std::string_view label_text,
                         const std::string& where);
  // Adds a row from text cells named by `names` (CSV, SQL results); empty text is missing.
  void add_cells(const std::vector<std::string_view>& names,
                 const std::vector<std::string_view>& cells, const std::string& where);
  // A row that could not be read: counted and, for the first few, described.
  void skip(const std::string& where, const std::string& why);
  // The dataset, or why the data as a whole is refused (no rows, too many bad ones).
  Result<Dataset> finish(const std::string& source);

 private:
  void add_object(simdjson::dom::object features, double label, const std::string& where);

  std::shared_ptr<const Schema> schema_;
  std::string label_;
  DatasetLimits limits_;
  Dataset data_;
  ReadReport report_;
  std::vector<Value> row_;
};

// Reads JSON-lines (.jsonl, .json) and CSV (.csv, with a header row) files, each contained in
// `root` (real path, not text), in order.
// Reading stops at `cancel` (an error), and once it has scanned four times max_bytes of text
// (as if max_rows were reached: a file of empty or over-long lines cannot keep it reading).
Result<Dataset> read_files(const std::filesystem::path& root,
                           const std::vector<std::filesystem::path>& files,
                           std::shared_ptr<const Schema> schema, const std::string& label,
                           const DatasetLimits& limits, ReadReport& report,
                           const std::atomic<bool>* cancel = nullptr);

// Which rows are held out for evaluation: a `holdout` share, chosen by a seeded hash of each
// row's position (random) or the last rows (data in time order). Deterministic.
struct Split {
  std::vector<std::size_t> train;
  std::vector<std::size_t> holdout;
};
Split split_rows(std::size_t rows, double holdout, std::uint64_t seed, bool last);

}  // namespace forklift::training
