#include "core/deployment.h"

#include <simdjson.h>

#include <cstdio>
#include <random>
#include <set>

#include "common/json_writer.h"

namespace forklift {
namespace {

std::uint64_t fnv1a(std::string_view key) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::uint64_t random_draw() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

}  // namespace

std::string Deployment::describe() const {
  std::string out;
  if (routes.empty()) {
    out = "policy";
  } else if (routes.size() == 1) {
    out = std::to_string(routes[0].version);
  } else {
    for (const auto& r : routes) {
      if (!out.empty()) out += ",";
      out += std::to_string(r.version) + ":" + std::to_string(r.weight);
    }
  }
  for (const auto& sh : shadows) {
    char rate[32];
    std::snprintf(rate, sizeof rate, "%g%%", sh.sample_rate * 100);
    out += " shadow " + std::to_string(sh.version) + "@" + rate;
  }
  return out;
}

Status Deployment::validate() const {
  std::set<std::int64_t> seen;
  for (const auto& r : routes) {
    if (r.version < 1) return InvalidArgument("route versions must be positive integers");
    if (r.weight == 0) {
      return InvalidArgument("version " + std::to_string(r.version) +
                             " has weight 0; leave it out");
    }
    if (!seen.insert(r.version).second) {
      return InvalidArgument("version " + std::to_string(r.version) + " appears twice");
    }
  }
  std::set<std::int64_t> shadowed;
  for (const auto& sh : shadows) {
    if (sh.version < 1) return InvalidArgument("shadow versions must be positive integers");
    if (!(sh.sample_rate > 0 && sh.sample_rate <= 1)) {
      return InvalidArgument("a shadow's sample_rate must be in (0, 1]");
    }
    if (!(sh.agree_tolerance >= 0)) {
      return InvalidArgument("a shadow's agree_tolerance must be a non-negative number");
    }
    if (seen.contains(sh.version)) {
      return InvalidArgument("version " + std::to_string(sh.version) +
                             " takes traffic already; it cannot also be its shadow");
    }
    if (!shadowed.insert(sh.version).second) {
      return InvalidArgument("shadow version " + std::to_string(sh.version) + " appears twice");
    }
  }
  return Status::Ok();
}

std::int64_t pick_version(const Deployment& deployment, std::string_view experiment_key) {
  const auto& routes = deployment.routes;
  if (routes.size() == 1) return routes[0].version;
  std::uint64_t total = 0;
  for (const auto& r : routes) total += r.weight;
  const std::uint64_t draw = experiment_key.empty() ? random_draw() : fnv1a(experiment_key);
  std::uint64_t point = draw % total;
  for (const auto& r : routes) {
    if (point < r.weight) return r.version;
    point -= r.weight;
  }
  return routes.back().version;
}

void append_deployment_json(std::string& out, const Deployment& deployment) {
  out += "{\"routes\":[";
  for (std::size_t i = 0; i < deployment.routes.size(); ++i) {
    if (i) out.push_back(',');
    out += "{\"version\":";
    json::append_int(out, deployment.routes[i].version);
    out += ",\"weight\":";
    json::append_int(out, deployment.routes[i].weight);
    out.push_back('}');
  }
  out += "],\"shadows\":[";
  for (std::size_t i = 0; i < deployment.shadows.size(); ++i) {
    const Shadow& sh = deployment.shadows[i];
    if (i) out.push_back(',');
    out += "{\"version\":";
    json::append_int(out, sh.version);
    out += ",\"sample_rate\":";
    json::append_double(out, sh.sample_rate);
    out += ",\"agree_tolerance\":";
    json::append_double(out, sh.agree_tolerance);
    out.push_back('}');
  }
  out += "]}";
}

Result<Deployment> parse_deployment_json(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(json.data(), json.size()).get(root)) {
    return InvalidArgument(std::string("malformed JSON: ") + simdjson::error_message(error));
  }
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) return InvalidArgument("a deployment must be a JSON object");
  Deployment d;
  for (auto [key, value] : obj) {
    if (key == "shadows") {
      simdjson::dom::array shadows;
      if (value.get_array().get(shadows)) return InvalidArgument("'shadows' must be an array");
      for (auto entry : shadows) {
        Shadow sh;
        if (entry["version"].get_int64().get(sh.version)) {
          return InvalidArgument("each shadow needs an integer 'version'");
        }
        if (auto rate = entry["sample_rate"]; rate.error() != simdjson::NO_SUCH_FIELD) {
          if (rate.get_double().get(sh.sample_rate)) {
            return InvalidArgument("a shadow's 'sample_rate' must be a number");
          }
        }
        if (auto tol = entry["agree_tolerance"]; tol.error() != simdjson::NO_SUCH_FIELD) {
          if (tol.get_double().get(sh.agree_tolerance)) {
            return InvalidArgument("a shadow's 'agree_tolerance' must be a number");
          }
        }
        d.shadows.push_back(sh);
      }
      continue;
    }
    if (key != "routes") return InvalidArgument("unknown field '" + std::string(key) + "'");
    simdjson::dom::array routes;
    if (value.get_array().get(routes)) return InvalidArgument("'routes' must be an array");
    for (auto route : routes) {
      std::int64_t version = 0;
      std::int64_t weight = 0;
      if (route["version"].get_int64().get(version)) {
        return InvalidArgument("each route needs an integer 'version'");
      }
      if (route["weight"].get_int64().get(weight) || weight < 0 || weight > 1'000'000) {
        return InvalidArgument("each route needs an integer 'weight' between 0 and 1000000");
      }
      d.routes.push_back(Route{version, static_cast<std::uint32_t>(weight)});
    }
  }
  if (Status s = d.validate(); !s.ok()) return s;
  return d;
}

}  // namespace forklift
