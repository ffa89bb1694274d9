#include "cli/admin_commands.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>

#include "cli/exit_codes.h"
#include "core/deployment.h"

namespace forklift {
namespace {

int call(const AdminEndpoint& endpoint, const std::string& method, const std::string& path,
         const std::string& body, AdminAnswer& answer) {
  return call_admin(endpoint, method, path, body, answer);
}

}  // namespace

int call_admin(const AdminEndpoint& endpoint, const std::string& method, const std::string& path,
               const std::string& body, AdminAnswer& answer) {
  // The server refuses these too, with a less helpful message about the HTTP request.
  if (endpoint.actor.size() > 64 || std::any_of(endpoint.actor.begin(), endpoint.actor.end(),
                                                [](char c) { return c < 0x20 || c > 0x7e; })) {
    std::fprintf(stderr, "forklift: --actor must be at most 64 printable ASCII characters\n");
    return kExitUsage;
  }
  auto result = admin_call(endpoint, method, path, body);
  if (!result.ok()) {
    std::fprintf(stderr, "forklift: %s\n", result.status().message().c_str());
    return result.status().code() == StatusCode::kDeadlineExceeded ? kExitNoAnswerInTime
                                                                   : kExitUnreachable;
  }
  answer = std::move(result).value();
  if (answer.status >= 200 && answer.status < 300) return 0;
  simdjson::dom::parser parser;
  std::string_view error;
  simdjson::dom::element root;
  if (!parser.parse(answer.body).get(root) && !root["error"].get_string().get(error)) {
    std::fprintf(stderr, "forklift: %.*s (HTTP %u)\n", static_cast<int>(error.size()), error.data(),
                 answer.status);
  } else {
    std::fprintf(stderr, "forklift: the server answered HTTP %u\n", answer.status);
  }
  return kExitFailed;
}

namespace {

// The deployment in a {"model_id", "deployment"} answer; prints why and returns nothing when
// the answer is not one.
std::optional<Deployment> deployment_in(const AdminAnswer& answer, std::string* model_id) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(answer.body).get(root)) {
    std::fprintf(stderr, "forklift: the server's answer is not JSON\n");
    return std::nullopt;
  }
  auto d = parse_deployment_json(simdjson::minify(root["deployment"]));
  if (!d.ok()) {
    std::fprintf(stderr, "forklift: unexpected answer: %s\n", d.status().message().c_str());
    return std::nullopt;
  }
  std::string_view id;
  if (model_id != nullptr)
    *model_id = root["model_id"].get_string().get(id) ? "?" : std::string(id);
  return std::move(d).value();
}

// Prints "MODEL: now serving ..." from a {"model_id", "deployment"} answer.
int print_deployment(const AdminAnswer& answer) {
  std::string id;
  const std::optional<Deployment> d = deployment_in(answer, &id);
  if (!d) return kExitFailed;
  std::string routes = "newest serving version (version policy)";
  if (!d->empty()) routes = "versions " + Deployment::of(d->routes).describe();
  for (const Shadow& sh : d->shadows) {
    char rate[64];
    std::snprintf(rate, sizeof rate, "%g%%", sh.sample_rate * 100);
    routes += "; shadow version " + std::to_string(sh.version) + " on " + rate + " of requests";
  }
  std::printf("%s: %s\n", id.c_str(), routes.c_str());
  return 0;
}

std::string traffic_of(const simdjson::dom::element& model, std::int64_t version) {
  bool unloaded = false;
  if (model["unloaded"].get_bool().get(unloaded)) unloaded = false;
  if (unloaded) return "unloaded";
  auto d = parse_deployment_json(simdjson::minify(model["deployment"]));
  if (d.ok() && !d->empty()) {
    std::uint64_t total = 0;
    for (const Route& r : d->routes) total += r.weight;
    for (const Route& r : d->routes) {
      if (r.version == version) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.0f%%", 100.0 * r.weight / static_cast<double>(total));
        return buf;
      }
    }
    return "-";
  }
  std::int64_t newest = 0;
  for (auto v : model["serving"].get_array()) newest = std::max(newest, v.get_int64().value());
  return version == newest ? "100% (policy)" : "-";
}

}  // namespace

int run_status(const AdminEndpoint& endpoint, const std::string& model_id) {
  AdminAnswer answer;
  const std::string path = model_id.empty() ? "/admin/models" : "/admin/models/" + model_id;
  if (int rc = call(endpoint, "GET", path, "", answer); rc != 0) return rc;
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(answer.body).get(root)) {
    std::fprintf(stderr, "forklift: the server's answer is not JSON\n");
    return kExitFailed;
  }
  std::vector<simdjson::dom::element> models;
  if (model_id.empty()) {
    for (auto m : root["models"].get_array()) models.push_back(m);
  } else {
    models.push_back(root);
  }
  std::printf("%-20s %-8s %-9s %-11s %-9s %s\n", "MODEL", "VERSION", "STATE", "SELF-TESTS", "LOAD",
              "TRAFFIC");
  for (const auto& m : models) {
    const std::string_view id = m["model_id"].get_string().value();
    for (auto v : m["versions"].get_array()) {
      const std::int64_t version = v["version"].get_int64().value();
      const std::string_view state = v["state"].get_string().value();
      std::string tests = "-";
      simdjson::dom::object selftest;
      if (!v["selftest"].get_object().get(selftest)) {
        tests = std::to_string(selftest["passed"].get_int64().value()) + "/" +
                std::to_string(selftest["cases"].get_int64().value());
      }
      char load[32];
      std::snprintf(load, sizeof load, "%.2f s", v["load_seconds"].get_double().value());
      std::printf("%-20.*s %-8lld %-9.*s %-11s %-9s %s\n", static_cast<int>(id.size()), id.data(),
                  static_cast<long long>(version), static_cast<int>(state.size()), state.data(),
                  tests.c_str(), load, traffic_of(m, version).c_str());
      std::string_view message;
      if (!v["message"].get_string().get(message) && !message.empty() && state == "failed") {
        std::printf("  %.*s\n", static_cast<int>(message.size()), message.data());
      }
    }
  }
  return 0;
}

int run_promote(const AdminEndpoint& endpoint, const std::string& model_id, long version,
                bool force) {
  AdminAnswer answer;
  const std::string body = "{\"version\":" + std::to_string(version) + "}";
  const std::string path = "/admin/models/" + model_id + "/promote" + (force ? "?force=true" : "");
  if (int rc = call(endpoint, "POST", path, body, answer)) {
    return rc;
  }
  return print_deployment(answer);
}

int run_rollback(const AdminEndpoint& endpoint, const std::string& model_id) {
  AdminAnswer answer;
  if (int rc = call(endpoint, "POST", "/admin/models/" + model_id + "/rollback", "", answer)) {
    return rc;
  }
  return print_deployment(answer);
}

int run_split(const AdminEndpoint& endpoint, const std::string& model_id,
              const std::vector<std::string>& routes, bool force) {
  Deployment d;
  for (const auto& spec : routes) {
    const auto eq = spec.find('=');
    try {
      if (eq == std::string::npos) throw std::invalid_argument(spec);
      std::size_t used = 0;
      const long long version = std::stoll(spec.substr(0, eq), &used);
      if (used != eq) throw std::invalid_argument(spec);
      const long long weight = std::stoll(spec.substr(eq + 1), &used);
      if (used != spec.size() - eq - 1 || weight < 0 || weight > 1'000'000) {
        throw std::invalid_argument(spec);
      }
      d.routes.push_back(Route{version, static_cast<std::uint32_t>(weight)});
    } catch (const std::exception&) {
      std::fprintf(stderr, "forklift: '%s' is not VERSION=WEIGHT (e.g. 2=10)\n", spec.c_str());
      return kExitUsage;
    }
  }
  // The shadows stay, as in the web UI: a split changes who takes traffic, not who shadows it
  // (a version now routed to stops shadowing).
  AdminAnswer answer;
  const std::string path = "/admin/models/" + model_id + "/deployment";
  if (int rc = call(endpoint, "GET", path, "", answer)) return rc;
  const std::optional<Deployment> current = deployment_in(answer, nullptr);
  if (!current) return kExitFailed;
  for (const Shadow& sh : current->shadows) {
    const bool routed = std::any_of(d.routes.begin(), d.routes.end(),
                                    [&](const Route& r) { return r.version == sh.version; });
    if (!routed) d.shadows.push_back(sh);
  }
  std::string body;
  append_deployment_json(body, d);
  if (int rc = call(endpoint, "PUT", path + (force ? "?force=true" : ""), body, answer)) {
    return rc;
  }
  return print_deployment(answer);
}

int run_reload(const AdminEndpoint& endpoint, const std::string& model_id, long version,
               bool force) {
  AdminAnswer answer;
  const std::string path = "/admin/models/" + model_id + "/versions/" + std::to_string(version) +
                           "/reload" + (force ? "?force=true" : "");
  if (int rc = call(endpoint, "POST", path, "", answer)) return rc;
  std::printf("%s: version %ld reloaded from its files and self-tested\n", model_id.c_str(),
              version);
  return run_status(endpoint, model_id);
}

int run_shadow(const AdminEndpoint& endpoint, const std::string& model_id, long version,
               double rate, double tolerance, bool off) {
  AdminAnswer answer;
  const std::string path = "/admin/models/" + model_id + "/deployment";
  if (int rc = call(endpoint, "GET", path, "", answer)) return rc;
  const std::optional<Deployment> current = deployment_in(answer, nullptr);
  if (!current) return kExitFailed;
  Deployment next = *current;
  const bool was_shadowing =
      std::erase_if(next.shadows, [&](const Shadow& sh) { return sh.version == version; }) > 0;
  if (off && !was_shadowing) {
    std::printf("%s: version %ld is not shadowing; nothing changed\n", model_id.c_str(), version);
    return 0;
  }
  if (!off) next.shadows.push_back(Shadow{version, rate, tolerance});
  std::string body;
  append_deployment_json(body, next);
  if (int rc = call(endpoint, "PUT", path, body, answer)) return rc;
  return print_deployment(answer);
}

int run_deploy(const AdminEndpoint& endpoint, const std::string& model_id) {
  AdminAnswer answer;
  if (int rc = call(endpoint, "POST", "/v2/repository/models/" + model_id + "/load", "", answer)) {
    return rc;
  }
  std::printf("%s: loaded\n", model_id.c_str());
  return run_status(endpoint, model_id);
}

int run_undeploy(const AdminEndpoint& endpoint, const std::string& model_id) {
  AdminAnswer answer;
  if (int rc =
          call(endpoint, "POST", "/v2/repository/models/" + model_id + "/unload", "", answer)) {
    return rc;
  }
  std::printf("%s: unloaded (in-flight requests finish first)\n", model_id.c_str());
  return 0;
}

}  // namespace forklift
