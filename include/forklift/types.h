// The values a model reads and writes, and the schema that describes them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace forklift {

// The type of one feature or of the output, as written in model.yaml.
enum class ValueType { kFloat, kInt, kBool, kString, kFloatVector };

std::string_view to_string(ValueType type);

// One feature's value. A float feature holds a double (NaN means "missing" when the schema allows
// it); an int feature an int64; a float vector exactly `length` floats.
using Value = std::variant<double, std::int64_t, bool, std::string, std::vector<float>>;

struct FeatureSpec {
  std::string name;
  ValueType type = ValueType::kFloat;
  std::size_t length = 1;      // number of elements; > 1 only for kFloatVector
  bool allow_missing = false;  // whether null (NaN) is accepted for a float feature
};

struct OutputSpec {
  std::string name;
  ValueType type = ValueType::kFloat;
  std::size_t length = 1;
};

struct Schema {
  std::vector<FeatureSpec> features;
  OutputSpec output;

  // Index of the feature called `name`, or -1.
  std::ptrdiff_t index_of(std::string_view name) const;
};

// A read-only view of one row: its values in schema order.
class RowView {
 public:
  RowView(const Schema& schema, std::span<const Value> values)
      : schema_(&schema), values_(values) {}

  std::size_t size() const { return values_.size(); }
  const Value& operator[](std::size_t i) const { return values_[i]; }
  // The value of the feature called `name`; throws std::out_of_range for an unknown name, which is
  // a bug in the runtime (the schema is checked before predict is called).
  const Value& at(std::string_view name) const;
  double number(std::string_view name) const;  // a float, int or bool feature as a double
  const Schema& schema() const { return *schema_; }

 private:
  const Schema* schema_;
  std::span<const Value> values_;
};

// Rows that passed schema validation, stored row-major in one buffer.
class Batch {
 public:
  explicit Batch(const Schema& schema) : schema_(&schema) {}

  const Schema& schema() const { return *schema_; }
  std::size_t rows() const { return width() == 0 ? 0 : values_.size() / width(); }
  std::size_t width() const { return schema_->features.size(); }
  RowView row(std::size_t i) const {
    return RowView(*schema_, std::span<const Value>(values_).subspan(i * width(), width()));
  }
  std::span<Value> mutable_row(std::size_t i) {
    return std::span<Value>(values_).subspan(i * width(), width());
  }
  // Appends a row of default values and returns it for filling.
  std::span<Value> add_row();
  // A hint: room for `n` rows, unless `n` rows could never fit (then nothing is reserved). A
  // caller sizing from untrusted content bounds `n` by the bytes that justify it first.
  void reserve_rows(std::size_t n) {
    std::size_t cells = 0;
    if (__builtin_mul_overflow(n, width(), &cells) || cells > values_.max_size()) return;
    values_.reserve(cells);
  }
  // Appends copies of `other`'s rows; `other` must have the same schema.
  void append_rows(const Batch& other) {
    values_.insert(values_.end(), other.values_.begin(), other.values_.end());
  }

 private:
  const Schema* schema_;
  std::vector<Value> values_;
};

}  // namespace forklift
