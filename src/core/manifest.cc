#include "core/manifest.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "common/file_util.h"
#include "common/json_writer.h"
#include "common/shown_key.h"
#include "core/repository.h"

namespace forklift {
namespace {

// Thrown inside this file only, turned into a Status before returning.
struct ManifestError {
  std::string field;
  std::string message;
};

[[noreturn]] void fail(std::string field, std::string message) {
  throw ManifestError{std::move(field), std::move(message)};
}

std::string required_string(const YAML::Node& node, const std::string& key, const std::string& at) {
  const YAML::Node v = node[key];
  if (!v) fail(at + key, "is required");
  if (!v.IsScalar() || v.as<std::string>().empty()) fail(at + key, "must be a non-empty string");
  return v.as<std::string>();
}

ValueType parse_type(const YAML::Node& v, const std::string& field) {
  if (!v || !v.IsScalar()) fail(field, "is required (float, int, bool, string or float_vector)");
  const std::string t = v.as<std::string>();
  if (t == "float") return ValueType::kFloat;
  if (t == "int") return ValueType::kInt;
  if (t == "bool") return ValueType::kBool;
  if (t == "string") return ValueType::kString;
  if (t == "float_vector") return ValueType::kFloatVector;
  fail(field, "'" + t + "' is not a type; use float, int, bool, string or float_vector");
}

std::size_t parse_length(const YAML::Node& node, ValueType type, const std::string& at) {
  const YAML::Node v = node["length"];
  if (type != ValueType::kFloatVector) {
    if (v) fail(at + "length", "is only allowed for float_vector");
    return 1;
  }
  if (!v) fail(at + "length", "is required for float_vector");
  long long n = 0;
  try {
    n = v.as<long long>();
  } catch (const YAML::Exception&) {
    fail(at + "length", "must be a positive integer");
  }
  if (n < 1 || n > 1'000'000) fail(at + "length", "must be between 1 and 1000000");
  return static_cast<std::size_t>(n);
}

bool is_identifier(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

Schema parse_schema(const YAML::Node& root) {
  Schema schema;
  const YAML::Node features = root["features"];
  if (!features) fail("features", "is required (a list of {name, type})");
  if (!features.IsSequence() || features.size() == 0) fail("features", "must be a non-empty list");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < features.size(); ++i) {
    const YAML::Node f = features[i];
    const std::string at = "features[" + std::to_string(i) + "].";
    if (!f.IsMap()) fail("features[" + std::to_string(i) + "]", "must be a map {name, type}");
    FeatureSpec spec;
    spec.name = required_string(f, "name", at);
    if (!is_identifier(spec.name)) {
      fail(at + "name", "'" + spec.name + "' must use only letters, digits, '_', '-' and '.'");
    }
    if (!seen.insert(spec.name).second) fail(at + "name", "'" + spec.name + "' appears twice");
    spec.type = parse_type(f["type"], at + "type");
    spec.length = parse_length(f, spec.type, at);
    if (const YAML::Node m = f["allow_missing"]) {
      if (spec.type != ValueType::kFloat && spec.type != ValueType::kFloatVector) {
        fail(at + "allow_missing", "is only allowed for float and float_vector features");
      }
      try {
        spec.allow_missing = m.as<bool>();
      } catch (const YAML::Exception&) {
        fail(at + "allow_missing", "must be true or false");
      }
    }
    schema.features.push_back(std::move(spec));
  }
  const YAML::Node out = root["output"];
  if (!out) fail("output", "is required ({name, type})");
  if (!out.IsMap()) fail("output", "must be a map {name, type}");
  schema.output.name = required_string(out, "name", "output.");
  schema.output.type = parse_type(out["type"], "output.type");
  schema.output.length = parse_length(out, schema.output.type, "output.");
  return schema;
}

VersionPolicy parse_policy(const YAML::Node& v) {
  VersionPolicy policy;
  if (!v) return policy;
  if (v.IsScalar()) {
    const std::string s = v.as<std::string>();
    if (s == "latest") return policy;
    if (s == "all") {
      policy.kind = VersionPolicy::Kind::kAll;
      return policy;
    }
    fail("version_policy", "'" + s + "' is not a policy; use latest, all or {specific: [1, 2]}");
  }
  const YAML::Node specific = v.IsMap() ? v["specific"] : YAML::Node();
  if (!specific || !specific.IsSequence() || specific.size() == 0) {
    fail("version_policy", "must be latest, all or {specific: [versions]}");
  }
  policy.kind = VersionPolicy::Kind::kSpecific;
  for (const auto& n : specific) {
    long long ver = 0;
    try {
      ver = n.as<long long>();
    } catch (const YAML::Exception&) {
      fail("version_policy.specific", "must list positive integers");
    }
    if (ver < 1) fail("version_policy.specific", "must list positive integers");
    policy.versions.push_back(ver);
  }
  return policy;
}

// An integer field of `node` within [lo, hi]; `fallback` when absent.
long long bounded_int(const YAML::Node& node, const std::string& key, const std::string& at,
                      long long lo, long long hi, long long fallback) {
  const YAML::Node v = node[key];
  if (!v) return fallback;
  long long n = lo - 1;
  try {
    n = v.as<long long>();
  } catch (const YAML::Exception&) {
  }
  if (n < lo || n > hi) {
    fail(at + key, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return n;
}

Manifest::Batching parse_batching(const YAML::Node& b) {
  const std::string at = "dynamic_batching.";
  if (!b.IsMap()) fail("dynamic_batching", "must be a map {max_batch_size, max_queue_delay_us}");
  for (const auto& kv : b) {
    const std::string key = kv.first.as<std::string>();
    if (key != "max_batch_size" && key != "max_queue_delay_us" && key != "threads" &&
        key != "max_queue_size") {
      fail(at + shown_key(key),
           "is not a known field (max_batch_size, max_queue_delay_us, threads, max_queue_size)");
    }
  }
  if (!b["max_batch_size"]) fail(at + "max_batch_size", "is required");
  Manifest::Batching out;
  out.max_batch_size =
      static_cast<std::size_t>(bounded_int(b, "max_batch_size", at, 1, 1'000'000, 0));
  out.max_queue_delay_us = bounded_int(b, "max_queue_delay_us", at, 0, 1'000'000, 0);
  out.threads = static_cast<std::size_t>(bounded_int(b, "threads", at, 1, 64, 1));
  out.max_queue_size =
      static_cast<std::size_t>(bounded_int(b, "max_queue_size", at, 1, 10'000'000, 1024));
  return out;
}

// A YAML node as JSON text, so that one parser reads a rollout policy from model.yaml and from
// the admin API. Plain scalars become numbers or booleans when they read as one.
void yaml_to_json(const YAML::Node& node, std::string& out, int depth) {
  if (depth > 8) fail("rollout", "is nested too deeply");
  if (node.IsMap()) {
    out.push_back('{');
    bool first = true;
    for (const auto& kv : node) {
      if (!first) out.push_back(',');
      first = false;
      json::append_string(out, kv.first.as<std::string>());
      out.push_back(':');
      yaml_to_json(kv.second, out, depth + 1);
    }
    out.push_back('}');
  } else if (node.IsSequence()) {
    out.push_back('[');
    for (std::size_t i = 0; i < node.size(); ++i) {
      if (i) out.push_back(',');
      yaml_to_json(node[i], out, depth + 1);
    }
    out.push_back(']');
  } else if (node.IsScalar()) {
    const std::string text = node.as<std::string>();
    char* end = nullptr;
    const double d = text.empty() ? 0 : std::strtod(text.c_str(), &end);
    if (node.Tag() != "!" && !text.empty() && end == text.c_str() + text.size() &&
        std::isfinite(d) && text.find_first_of("xXnN") == std::string::npos) {
      json::append_double(out, d);
    } else if (node.Tag() != "!" && (text == "true" || text == "false")) {
      out += text;
    } else {
      json::append_string(out, text);
    }
  } else {
    out += "null";
  }
}

QualitySpec parse_quality(const YAML::Node& q) {
  if (!q.IsMap()) fail("quality", "must be a map {task, threshold}");
  for (const auto& kv : q) {
    const std::string key = kv.first.as<std::string>();
    if (key != "task" && key != "threshold") {
      fail("quality." + shown_key(key), "is not a known field (task, threshold)");
    }
  }
  QualitySpec spec;
  const std::string task = q["task"] && q["task"].IsScalar() ? q["task"].as<std::string>() : "";
  if (task == "regression") {
    spec.task = QualitySpec::Task::kRegression;
  } else if (task == "binary_classification") {
    spec.task = QualitySpec::Task::kBinaryClassification;
  } else {
    fail("quality.task", "must be regression or binary_classification");
  }
  if (const YAML::Node t = q["threshold"]) {
    double threshold = -1;
    try {
      threshold = t.as<double>();
    } catch (const YAML::Exception&) {
    }
    if (!(threshold >= 0 && threshold <= 1)) fail("quality.threshold", "must be 0 to 1");
    spec.threshold = threshold;
  }
  return spec;
}

Manifest parse_root(const YAML::Node& root) {
  if (!root.IsMap()) fail("(top level)", "must be a map");
  static const std::set<std::string> kKnown = {
      "runtime", "artifact",        "description",  "version_policy", "features",
      "output",  "runtime_options", "new_versions", "timeout_ms",     "dynamic_batching",
      "rollout", "quality",         "memory",       "engine"};
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    if (!kKnown.contains(key)) fail(shown_key(key), "is not a known field");
  }
  Manifest m;
  m.runtime = required_string(root, "runtime", "");
  m.artifact = required_string(root, "artifact", "");
  if (m.artifact.find("..") != std::string::npos || m.artifact.front() == '/') {
    fail("artifact", "must be a file inside the version directory");
  }
  if (const YAML::Node d = root["description"]) m.description = d.as<std::string>();
  m.schema = parse_schema(root);
  m.version_policy = parse_policy(root["version_policy"]);
  if (const YAML::Node n = root["new_versions"]) {
    const std::string v = n.IsScalar() ? n.as<std::string>() : "";
    if (v != "promote" && v != "hold") fail("new_versions", "must be promote or hold");
    m.hold_new_versions = v == "hold";
  }
  if (const YAML::Node mem = root["memory"]) {
    const std::string v = mem.IsScalar() ? mem.as<std::string>() : "";
    if (v != "pinned" && v != "on_demand") fail("memory", "must be pinned or on_demand");
    m.pinned = v == "pinned";
  }
  if (const YAML::Node e = root["engine"]) {
    const std::string v = e.IsScalar() ? e.as<std::string>() : "";
    if (v != "auto" && v != "native" && v != "library") {
      fail("engine", "must be auto, native or library");
    }
    // The built-in runtimes with one way to evaluate a model; a team's own runtime may read it
    // (LoadContext::engine).
    static const std::set<std::string> kOneEngine = {"tree", "python", "torchscript", "online",
                                                     "constant"};
    if (kOneEngine.contains(m.runtime)) {
      fail("engine", "the " + m.runtime + " runtime has one engine; engine applies to the " +
                         "xgboost runtime (and to runtimes of your own that read it)");
    }
    m.engine = v;
  }
  if (const YAML::Node t = root["timeout_ms"]) {
    long long ms = -1;
    try {
      ms = t.as<long long>();
    } catch (const YAML::Exception&) {
    }
    if (ms < 0 || ms > 3'600'000) fail("timeout_ms", "must be 0 (none) to 3600000 milliseconds");
    m.timeout_ms = ms;
  }
  if (const YAML::Node b = root["dynamic_batching"]) m.batching = parse_batching(b);
  if (const YAML::Node q = root["quality"]) m.quality = parse_quality(q);
  if (const YAML::Node r = root["rollout"]) {
    std::string text;
    yaml_to_json(r, text, 0);
    auto policy = parse_rollout_policy_json(text);
    if (!policy.ok())
      fail("rollout", "is not a valid rollout policy: " + policy.status().message());
    m.rollout = std::move(policy).value();
  }
  if (const YAML::Node opts = root["runtime_options"]) {
    if (!opts.IsMap()) fail("runtime_options", "must be a map of names to scalar values");
    for (const auto& kv : opts) {
      if (!kv.second.IsScalar())
        fail("runtime_options." + kv.first.as<std::string>(), "must be a scalar");
      m.runtime_options[kv.first.as<std::string>()] = kv.second.as<std::string>();
    }
  }
  return m;
}

}  // namespace

Result<Manifest> parse_manifest_text(const std::string& yaml, const std::string& origin) {
  try {
    return parse_root(YAML::Load(yaml));
  } catch (const ManifestError& e) {
    return InvalidArgument(origin + ": field '" + e.field + "' " + e.message);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(origin + ": not valid YAML: " + e.what());
  }
}

Result<Manifest> read_manifest(const std::filesystem::path& version_dir) {
  const std::filesystem::path file = version_dir / "model.yaml";
  auto opened = open_regular_within(repository_of(version_dir), file, kMaxManifestBytes);
  if (!opened.ok()) return opened.status();
  const std::string text = read_up_to(opened->fd.get(), static_cast<std::size_t>(opened->size));
  return parse_manifest_text(text, file.string());
}

Result<Manifest> parse_manifest(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return NotFound(file.string() + ": cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  return parse_manifest_text(text.str(), file.string());
}

}  // namespace forklift
