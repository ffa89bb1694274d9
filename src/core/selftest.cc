#include "core/selftest.h"

#include <simdjson.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>

#include "common/float_cast.h"
#include "core/features_json.h"

namespace forklift {
namespace {

struct Case {
  std::string name;
  std::size_t line = 0;
  Value expected;
  double atol = 1e-6;
  double rtol = 1e-5;
};

bool close_enough(double got, double want, const Case& c) {
  if (std::isnan(got) || std::isnan(want)) return std::isnan(got) && std::isnan(want);
  return std::fabs(got - want) <= c.atol + c.rtol * std::fabs(want);
}

std::optional<double> as_number(const Value& v) {
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  if (const auto* b = std::get_if<bool>(&v)) return *b ? 1.0 : 0.0;
  return std::nullopt;
}

std::string describe(const Value& v) {
  std::ostringstream out;
  out.precision(9);
  if (auto n = as_number(v)) {
    out << *n;
  } else if (const auto* s = std::get_if<std::string>(&v)) {
    out << '"' << *s << '"';
  } else if (const auto* vec = std::get_if<std::vector<float>>(&v)) {
    out << '[';
    for (std::size_t i = 0; i < vec->size(); ++i) out << (i ? ", " : "") << (*vec)[i];
    out << ']';
  }
  return out.str();
}

// Empty when `got` matches the case, else why not.
std::string compare(const Value& got, const Case& c) {
  const auto mismatch = [&] {
    return "expected " + describe(c.expected) + ", got " + describe(got);
  };
  if (const auto* want_vec = std::get_if<std::vector<float>>(&c.expected)) {
    const auto* got_vec = std::get_if<std::vector<float>>(&got);
    if (!got_vec || got_vec->size() != want_vec->size()) return mismatch();
    for (std::size_t i = 0; i < want_vec->size(); ++i) {
      if (!close_enough((*got_vec)[i], (*want_vec)[i], c)) return mismatch();
    }
    return {};
  }
  if (const auto* want_s = std::get_if<std::string>(&c.expected)) {
    const auto* got_s = std::get_if<std::string>(&got);
    return got_s && *got_s == *want_s ? std::string() : mismatch();
  }
  auto want = as_number(c.expected);
  auto have = as_number(got);
  if (!want || !have || !close_enough(*have, *want, c)) return mismatch();
  return {};
}

Status parse_expected(simdjson::ondemand::value v, Value& out) {
  simdjson::ondemand::json_type t;
  if (v.type().get(t)) return InvalidArgument("malformed 'expected'");
  switch (t) {
    case simdjson::ondemand::json_type::number: {
      double d = 0;
      if (v.get_double().get(d)) return InvalidArgument("malformed 'expected'");
      out = d;
      return Status::Ok();
    }
    case simdjson::ondemand::json_type::boolean: {
      bool b = false;
      if (v.get_bool().get(b)) return InvalidArgument("malformed 'expected'");
      out = b;
      return Status::Ok();
    }
    case simdjson::ondemand::json_type::string: {
      std::string_view s;
      if (v.get_string().get(s)) return InvalidArgument("malformed 'expected'");
      out = std::string(s);
      return Status::Ok();
    }
    case simdjson::ondemand::json_type::array: {
      std::vector<float> vec;
      for (auto e : v.get_array()) {
        double d = 0;
        if (e.get_double().get(d)) return InvalidArgument("'expected' must hold only numbers");
        vec.push_back(to_float_saturating(d));  // beyond float's range: never equal to an output
      }
      out = std::move(vec);
      return Status::Ok();
    }
    default:
      return InvalidArgument("'expected' must be a number, boolean, string or array of numbers");
  }
}

// Parses one line into `c` and one row of `batch`.
Status parse_line(simdjson::ondemand::parser& parser, const std::string& text, Case& c,
                  Batch& batch) {
  simdjson::padded_string padded(text);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc)) return InvalidArgument("not valid JSON");
  simdjson::ondemand::object obj;
  if (doc.get_object().get(obj)) return InvalidArgument("must be a JSON object");
  bool have_features = false;
  bool have_expected = false;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return InvalidArgument("not valid JSON");
    simdjson::ondemand::value v = field.value();
    if (key == "features") {
      if (Status s = parse_feature_object(v, batch.schema(), batch.add_row()); !s.ok()) return s;
      have_features = true;
    } else if (key == "expected") {
      if (Status s = parse_expected(v, c.expected); !s.ok()) return s;
      have_expected = true;
    } else if (key == "name") {
      std::string_view name;
      if (v.get_string().get(name)) return InvalidArgument("'name' must be a string");
      c.name = std::string(name);
    } else if (key == "atol" || key == "rtol") {
      double d = 0;
      if (v.get_double().get(d) || d < 0) {
        return InvalidArgument("'" + std::string(key) + "' must be a non-negative number");
      }
      (key == "atol" ? c.atol : c.rtol) = d;
    } else {
      return InvalidArgument("unknown field '" + std::string(key) +
                             "' (expected features, expected, name, atol, rtol)");
    }
  }
  if (!have_features) return InvalidArgument("'features' is required");
  if (!have_expected) return InvalidArgument("'expected' is required");
  return Status::Ok();
}

}  // namespace

std::string SelfTestReport::summary() const {
  std::string s = std::to_string(passed) + "/" + std::to_string(cases) + " self-tests passed";
  for (const auto& f : failures) s += "\n  " + f;
  return s;
}

Status read_selftest_inputs(const std::filesystem::path& file, Batch& rows) {
  std::ifstream in(file);
  if (!in) return NotFound(file.string() + " cannot be read");
  simdjson::ondemand::parser parser;
  Batch parsed(rows.schema());
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Case c;
    if (Status s = parse_line(parser, line, c, parsed); !s.ok()) {
      return InvalidArgument(file.string() + ":" + std::to_string(number) + ": " + s.message());
    }
  }
  rows.append_rows(parsed);
  return Status::Ok();
}

SelfTestReport run_selftests(const Model& model, const Schema& schema,
                             const std::filesystem::path& file) {
  const auto start = std::chrono::steady_clock::now();
  SelfTestReport report;
  const auto finish = [&] {
    report.duration_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
  };
  std::ifstream in(file);
  if (!in) {
    report.failures.push_back(file.string() + " is missing: every version must ship self-tests");
    return finish();
  }
  simdjson::ondemand::parser parser;
  std::vector<Case> cases;
  Batch all(schema);
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Case c;
    c.line = number;
    c.name = "line " + std::to_string(number);
    if (Status s = parse_line(parser, line, c, all); !s.ok()) {
      report.failures.push_back(file.string() + ":" + std::to_string(number) + ": " + s.message());
      return finish();
    }
    cases.push_back(std::move(c));
  }
  report.cases = cases.size();
  if (cases.empty()) {
    report.failures.push_back(file.string() + " holds no cases");
    return finish();
  }
  // One at a time (what a single request sees), then as one batch.
  std::vector<Value> one_by_one;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    Batch single(schema);
    auto row = single.add_row();
    auto src = all.row(i);
    for (std::size_t k = 0; k < row.size(); ++k) row[k] = src[k];
    std::vector<Value> out;
    Status s = model.predict(single, out);
    if (!s.ok()) {
      report.failures.push_back(cases[i].name + ": " + s.message());
      continue;
    }
    if (std::string why = compare(out[0], cases[i]); !why.empty()) {
      report.failures.push_back(cases[i].name + ": " + why);
      continue;
    }
    ++report.passed;
  }
  std::vector<Value> batched;
  Status s = model.predict(all, batched);
  if (!s.ok()) {
    report.failures.push_back("all cases as one batch: " + s.message());
  } else {
    for (std::size_t i = 0; i < cases.size(); ++i) {
      if (std::string why = compare(batched[i], cases[i]); !why.empty()) {
        report.failures.push_back(cases[i].name + " (in a batch): " + why);
      }
    }
  }
  return finish();
}

}  // namespace forklift
