#include "core/drift/feature_profile.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "common/json_writer.h"

namespace forklift {
namespace {

constexpr std::size_t kMaxCategories = 20;
constexpr std::size_t kMaxNameBytes = 256;
constexpr double kFloor = 1e-4;

std::optional<double> profiled_number_of(const Value& v) {
  if (const auto* d = std::get_if<double>(&v)) {
    return std::isnan(*d) ? std::nullopt : std::optional(*d);
  }
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  return std::nullopt;
}

std::optional<std::string> category_of(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* b = std::get_if<bool>(&v)) return std::string(*b ? "true" : "false");
  return std::nullopt;
}

bool is_missing(const Value& v) {
  const auto* d = std::get_if<double>(&v);
  return d != nullptr && std::isnan(*d);
}

// A distribution of `values` (all of one feature, missing ones included).
std::optional<Distribution> distribution_of(const std::vector<const Value*>& values,
                                            std::size_t bins) {
  Distribution d;
  std::size_t missing = 0;
  std::vector<double> numbers;
  std::unordered_map<std::string, std::size_t> counts;
  for (const Value* v : values) {
    if (is_missing(*v)) {
      ++missing;
    } else if (auto n = profiled_number_of(*v)) {
      numbers.push_back(*n);
    } else if (auto c = category_of(*v)) {
      ++counts[c->substr(0, kMaxNameBytes)];
    }
  }
  if (values.empty() || (numbers.empty() && counts.empty())) return std::nullopt;
  d.missing_rate = static_cast<double>(missing) / static_cast<double>(values.size());
  if (!numbers.empty()) {
    std::sort(numbers.begin(), numbers.end());
    for (std::size_t i = 1; i < bins; ++i) {
      const double edge = numbers[i * numbers.size() / bins];
      if (d.edges.empty() || edge > d.edges.back()) d.edges.push_back(edge);
    }
    d.fractions.assign(d.edges.size() + 1, 0);
  } else {
    d.kind = Distribution::Kind::kCategorical;
    std::vector<std::pair<std::string, std::size_t>> ranked(counts.begin(), counts.end());
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    for (std::size_t i = 0; i < ranked.size() && i < kMaxCategories; ++i) {
      d.categories.push_back(ranked[i].first);
    }
    d.fractions.assign(d.categories.size() + 1, 0);
  }
  std::size_t counted = 0;
  for (const Value* v : values) {
    if (auto bin = d.bin_of(*v)) {
      d.fractions[*bin] += 1;
      ++counted;
    }
  }
  for (double& f : d.fractions) f /= static_cast<double>(std::max<std::size_t>(1, counted));
  return d;
}

Result<Distribution> parse_distribution(simdjson::dom::element e, const std::string& where) {
  Distribution d;
  std::string_view kind;
  if (e["kind"].get_string().get(kind) || (kind != "numeric" && kind != "categorical")) {
    return InvalidArgument(where + ": 'kind' must be numeric or categorical");
  }
  d.kind = kind == "numeric" ? Distribution::Kind::kNumeric : Distribution::Kind::kCategorical;
  if (e["missing_rate"].get_double().get(d.missing_rate) ||
      !(d.missing_rate >= 0 && d.missing_rate <= 1)) {
    return InvalidArgument(where + ": 'missing_rate' must be a number from 0 to 1");
  }
  simdjson::dom::array fractions;
  if (e["fractions"].get_array().get(fractions)) {
    return InvalidArgument(where + ": 'fractions' must be an array");
  }
  for (auto f : fractions) {
    double x = 0;
    if (f.get_double().get(x) || !(x >= 0 && x <= 1)) {
      return InvalidArgument(where + ": each fraction must be a number from 0 to 1");
    }
    if (d.fractions.size() >= kMaxProfileBins + 1) {
      return InvalidArgument(where + ": more than 100 bins");
    }
    d.fractions.push_back(x);
  }
  if (d.kind == Distribution::Kind::kNumeric) {
    simdjson::dom::array edges;
    if (e["edges"].get_array().get(edges)) {
      return InvalidArgument(where + ": 'edges' must be an array");
    }
    for (auto edge : edges) {
      double x = 0;
      if (edge.get_double().get(x) || !std::isfinite(x) ||
          (!d.edges.empty() && x <= d.edges.back())) {
        return InvalidArgument(where + ": 'edges' must be increasing finite numbers");
      }
      if (d.edges.size() >= kMaxProfileBins) return InvalidArgument(where + ": too many edges");
      d.edges.push_back(x);
    }
    if (d.fractions.size() != d.edges.size() + 1) {
      return InvalidArgument(where + ": 'fractions' must have one more entry than 'edges'");
    }
  } else {
    simdjson::dom::array categories;
    if (e["categories"].get_array().get(categories)) {
      return InvalidArgument(where + ": 'categories' must be an array");
    }
    for (auto c : categories) {
      std::string_view s;
      if (c.get_string().get(s) || s.size() > kMaxNameBytes) {
        return InvalidArgument(where + ": each category must be a string of at most 256 bytes");
      }
      if (d.categories.size() >= kMaxProfileBins) {
        return InvalidArgument(where + ": too many categories");
      }
      if (std::find(d.categories.begin(), d.categories.end(), s) != d.categories.end()) {
        return InvalidArgument(where + ": a category appears twice");
      }
      d.categories.emplace_back(s);
    }
    if (d.fractions.size() != d.categories.size() + 1) {
      return InvalidArgument(where +
                             ": 'fractions' must have one entry per category and one for others");
    }
  }
  // Shares of the non-missing values: they add up to 1 (all 0 when every value was missing).
  double sum = 0;
  for (double f : d.fractions) sum += f;
  if (!(std::fabs(sum - 1) <= 1e-3 || sum == 0)) {
    return InvalidArgument(where + ": 'fractions' must add up to 1");
  }
  return d;
}

void append_distribution(std::string& out, const Distribution& d) {
  out += "{\"kind\":";
  out += d.kind == Distribution::Kind::kNumeric ? "\"numeric\"" : "\"categorical\"";
  out += ",\"missing_rate\":";
  json::append_double(out, d.missing_rate);
  if (d.kind == Distribution::Kind::kNumeric) {
    out += ",\"edges\":[";
    for (std::size_t i = 0; i < d.edges.size(); ++i) {
      if (i) out.push_back(',');
      json::append_double(out, d.edges[i]);
    }
  } else {
    out += ",\"categories\":[";
    for (std::size_t i = 0; i < d.categories.size(); ++i) {
      if (i) out.push_back(',');
      json::append_string(out, d.categories[i]);
    }
  }
  out += "],\"fractions\":[";
  for (std::size_t i = 0; i < d.fractions.size(); ++i) {
    if (i) out.push_back(',');
    json::append_double(out, d.fractions[i]);
  }
  out += "]}";
}

}  // namespace

std::optional<std::size_t> Distribution::bin_of(const Value& value) const {
  if (kind == Kind::kNumeric) {
    const auto n = profiled_number_of(value);
    if (!n) return std::nullopt;
    return static_cast<std::size_t>(std::upper_bound(edges.begin(), edges.end(), *n) -
                                    edges.begin());
  }
  const auto c = category_of(value);
  if (!c) return std::nullopt;
  const auto it = std::find(categories.begin(), categories.end(), *c);
  return static_cast<std::size_t>(it - categories.begin());  // past the end: "other"
}

Result<FeatureProfile> parse_feature_profile(std::string_view json) {
  if (json.size() > kMaxProfileBytes) return InvalidArgument("profile.json is larger than 4 MiB");
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(json.data(), json.size()).get(root)) {
    return InvalidArgument(std::string("profile.json is not valid JSON: ") +
                           simdjson::error_message(error));
  }
  std::int64_t format = 0;
  if (root["format"].get_int64().get(format) || format != 1) {
    return InvalidArgument("profile.json: 'format' must be 1");
  }
  FeatureProfile p;
  if (root["rows"].get_int64().get(p.rows) || p.rows < 0) {
    return InvalidArgument("profile.json: 'rows' must be a non-negative integer");
  }
  std::string_view source;
  if (!root["source"].get_string().get(source)) p.source = std::string(source.substr(0, 1024));
  simdjson::dom::object features;
  if (root["features"].get_object().get(features)) {
    return InvalidArgument("profile.json: 'features' must be an object");
  }
  for (auto [name, value] : features) {
    if (p.features.size() >= kMaxProfileFeatures) {
      return InvalidArgument("profile.json: more than 10000 features");
    }
    const std::string shown(name.substr(0, 64));
    auto d = parse_distribution(value, "profile.json: feature '" + shown + "'");
    if (!d.ok()) return d.status();
    if (!p.features.emplace(std::string(name), std::move(d).value()).second) {
      return InvalidArgument("profile.json: feature '" + shown + "' appears twice");
    }
  }
  simdjson::dom::element output;
  if (!root["output"].get(output) && !output.is_null()) {
    auto d = parse_distribution(output, "profile.json: output");
    if (!d.ok()) return d.status();
    p.output = std::move(d).value();
  }
  return p;
}

std::string feature_profile_to_json(const FeatureProfile& p) {
  std::string out = "{\"format\":1,\"rows\":";
  json::append_int(out, p.rows);
  out += ",\"source\":";
  json::append_string(out, p.source);
  out += ",\"features\":{";
  bool first = true;
  for (const auto& [name, d] : p.features) {
    if (!first) out.push_back(',');
    first = false;
    out += "\n  ";
    json::append_string(out, name);
    out.push_back(':');
    append_distribution(out, d);
  }
  out += "},\n\"output\":";
  if (p.output) {
    append_distribution(out, *p.output);
  } else {
    out += "null";
  }
  out += "}\n";
  return out;
}

FeatureProfile build_feature_profile(const Batch& rows, const std::vector<Value>& outputs,
                                     std::size_t bins, std::string source) {
  FeatureProfile p;
  p.rows = static_cast<std::int64_t>(rows.rows());
  p.source = std::move(source);
  const Schema& schema = rows.schema();
  for (std::size_t f = 0; f < schema.features.size(); ++f) {
    std::vector<const Value*> values;
    values.reserve(rows.rows());
    for (std::size_t r = 0; r < rows.rows(); ++r) values.push_back(&rows.row(r)[f]);
    if (auto d = distribution_of(values, bins)) p.features.emplace(schema.features[f].name, *d);
  }
  std::vector<const Value*> outs;
  for (const Value& v : outputs) outs.push_back(&v);
  p.output = distribution_of(outs, bins);
  return p;
}

double population_stability_index(const std::vector<double>& expected,
                                  const std::vector<std::uint64_t>& actual) {
  std::uint64_t total = 0;
  for (std::uint64_t a : actual) total += a;
  if (total == 0 || expected.size() != actual.size()) return 0;
  double psi = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double e = std::max(expected[i], kFloor);
    const double a = std::max(static_cast<double>(actual[i]) / static_cast<double>(total), kFloor);
    psi += (a - e) * std::log(a / e);
  }
  return psi;
}

}  // namespace forklift
