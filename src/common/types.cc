#include "forklift/types.h"

#include <stdexcept>

namespace forklift {

std::string_view to_string(ValueType type) {
  switch (type) {
    case ValueType::kFloat:
      return "float";
    case ValueType::kInt:
      return "int";
    case ValueType::kBool:
      return "bool";
    case ValueType::kString:
      return "string";
    case ValueType::kFloatVector:
      return "float_vector";
  }
  return "unknown";
}

std::ptrdiff_t Schema::index_of(std::string_view name) const {
  for (std::size_t i = 0; i < features.size(); ++i) {
    if (features[i].name == name) return static_cast<std::ptrdiff_t>(i);
  }
  return -1;
}

const Value& RowView::at(std::string_view name) const {
  std::ptrdiff_t i = schema_->index_of(name);
  if (i < 0) throw std::out_of_range("unknown feature '" + std::string(name) + "'");
  return values_[static_cast<std::size_t>(i)];
}

double RowView::number(std::string_view name) const {
  const Value& v = at(name);
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  if (const auto* b = std::get_if<bool>(&v)) return *b ? 1.0 : 0.0;
  throw std::invalid_argument("feature '" + std::string(name) + "' is not a number");
}

std::span<Value> Batch::add_row() {
  std::size_t start = values_.size();
  values_.resize(start + width());
  return std::span<Value>(values_).subspan(start, width());
}

}  // namespace forklift
