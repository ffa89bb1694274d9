#include "api/admin_router.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "api/route_util.h"
#include "common/json_writer.h"
#include "common/thread_priority.h"
#include "core/repository.h"
#include "observability/log.h"

namespace forklift {
namespace {

// Whether the query string says force=true (override the schema compatibility guard).
bool forced(std::string_view target) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return false;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    if (query.substr(0, amp) == "force=true") return true;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

std::string actor_of(const HttpRequest& req) {
  if (req.actor.empty() || req.actor.size() > 64) return "admin";
  return std::string(req.actor);
}

void append_selftest(std::string& out, const SelfTestReport& r) {
  out += "{\"cases\":";
  json::append_int(out, static_cast<std::int64_t>(r.cases));
  out += ",\"passed\":";
  json::append_int(out, static_cast<std::int64_t>(r.passed));
  out += ",\"failures\":[";
  for (std::size_t i = 0; i < r.failures.size(); ++i) {
    if (i) out.push_back(',');
    json::append_string(out, r.failures[i]);
  }
  out += "],\"seconds\":";
  json::append_double(out, r.duration_seconds);
  out.push_back('}');
}

// `details`: the reasons versions failed or were unloaded and their self-test failures, which
// can quote the repository's files: only for a request with the admin token.
void append_model(std::string& out, const ModelState& m, bool details) {
  out += "{\"model_id\":";
  json::append_string(out, m.model_id);
  out += m.control.unloaded ? ",\"unloaded\":true" : ",\"unloaded\":false";
  out += ",\"serving\":[";
  bool first = true;
  for (const auto& [v, _] : m.serving) {
    if (!first) out.push_back(',');
    first = false;
    json::append_int(out, v);
  }
  out += "],\"deployment\":";
  append_deployment_json(out, m.control.deployment);
  out += ",\"can_roll_back\":";
  out += m.control.history.empty() ? "false" : "true";
  out += ",\"versions\":[";
  first = true;
  for (const auto& [v, st] : m.versions) {
    if (!first) out.push_back(',');
    first = false;
    out += "{\"version\":";
    json::append_int(out, v);
    out += ",\"state\":\"";
    out += to_string(st.state);
    out += "\",\"message\":";
    json::append_string(out, details || st.message.empty()
                                 ? st.message
                                 : std::string("(the reason is shown with the admin token)"));
    out += ",\"load_seconds\":";
    json::append_double(out, st.load_seconds);
    out += ",\"selftest\":";
    if (st.selftest) {
      SelfTestReport report = *st.selftest;
      if (!details && !report.failures.empty()) {
        report.failures = {"(failures are shown with the admin token)"};
      }
      append_selftest(out, report);
    } else {
      out += "null";
    }
    out.push_back('}');
  }
  out += "]}";
}

// {"model_id": ..., "deployment": {...}}
std::string deployment_answer(std::string_view model_id, const Deployment& d) {
  std::string out = "{\"model_id\":";
  json::append_string(out, model_id);
  out += ",\"deployment\":";
  append_deployment_json(out, d);
  out.push_back('}');
  return out;
}

Result<std::int64_t> parse_promote_body(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body).get(root)) return InvalidArgument("malformed JSON; send {\"version\": N}");
  std::int64_t v = 0;
  if (root["version"].get_int64().get(v) || v < 1) {
    return InvalidArgument("'version' must be a positive integer");
  }
  return v;
}

}  // namespace

bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

namespace {

// How long a client waits for a change (a deployment that loads a large model) before the
// listener closes its connection.
constexpr std::chrono::seconds kChangeAnswerWithin{15 * 60};
// Changes waiting behind the one running; more are refused with 503.
constexpr std::size_t kMaxPendingChanges = 64;

// The Host header without its port ("a:1" -> "a", "[::1]:8081" -> "[::1]"), or empty when what
// follows the name is not ":" and digits ("localhost:evil.example" names no host of ours).
std::string_view host_name(std::string_view host) {
  std::size_t end = host.find(':');
  if (host.starts_with('[')) {
    const auto close = host.find(']');
    if (close == std::string_view::npos) return {};
    end = close + 1 == host.size() ? std::string_view::npos : close + 1;
    if (end != std::string_view::npos && host[end] != ':') return {};
  }
  if (end == std::string_view::npos) return host;
  const std::string_view port = host.substr(end + 1);
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return {};
  }
  return host.substr(0, end);
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool is_ip_literal(std::string_view name) {
  if (name.starts_with('[') && name.ends_with(']')) {
    name = name.substr(1, name.size() - 2);
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
    });
  }
  int parts = 0;
  while (!name.empty()) {
    const auto dot = name.find('.');
    const std::string_view part = name.substr(0, dot);
    if (part.empty() || part.size() > 3 ||
        !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoi(std::string(part)) > 255) {
      return false;
    }
    ++parts;
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
    if (name.empty()) return false;
  }
  return parts == 4;
}

}  // namespace

AdminRouter::AdminRouter(ApiContext ctx, std::string token, std::filesystem::path ui_dir,
                         std::vector<std::string> host_names)
    : ctx_(ctx),
      token_(std::move(token)),
      ui_dir_(std::move(ui_dir)),
      host_names_(std::move(host_names)),
      // Changes load and self-test models: like the listener, they yield the CPU to serving.
      changes_(std::make_unique<SerialWorker>(kMaxPendingChanges,
                                              [] { lower_this_thread_priority(10); })) {}

AdminRouter::~AdminRouter() = default;

bool AdminRouter::host_allowed(std::string_view host) const {
  if (host.empty()) return true;  // HTTP/1.0 without Host: no browser sends that
  const std::string_view name = host_name(host);
  if (name.empty()) return false;
  if (is_ip_literal(name) || iequals(name, "localhost")) return true;
  return std::any_of(host_names_.begin(), host_names_.end(),
                     [&](const std::string& allowed) { return iequals(name, allowed); });
}

void AdminRouter::defer_change(const HttpRequest& req) const {
  // The request's views point into the connection's parser: copied, since the change runs on
  // another thread.
  struct Copy {
    std::string method, target, body, authorization, actor, host;
  };
  auto copy = std::make_shared<Copy>(Copy{std::string(req.method), std::string(req.target),
                                          *req.body, std::string(req.authorization),
                                          std::string(req.actor), std::string(req.host)});
  ResumeResponse resume = req.deferral->defer(kChangeAnswerWithin);
  auto task = [this, copy, resume]() {
    HttpRequest r;
    r.method = copy->method;
    r.target = copy->target;
    r.body = &copy->body;
    r.authorization = copy->authorization;
    r.actor = copy->actor;
    r.host = copy->host;
    HttpResponse answer;
    handle_now(r, answer);
    // A change may have retired versions: free the ones nobody holds, here, not on a serving
    // thread.
    ctx_.registry->collect_retired();
    resume([answer = std::move(answer)](HttpResponse& out) mutable {
      std::string request_id = std::move(out.request_id);
      out = std::move(answer);
      out.request_id = std::move(request_id);
    });
  };
  if (!changes_->submit(std::move(task))) {
    // The task's copy of `resume` went with it; this one still answers.
    resume([](HttpResponse& out) {
      out.json(503, json::error_body("too many control-plane changes are waiting; retry later"));
      out.headers.emplace_back("Retry-After", "1");
    });
  }
}

bool AdminRouter::authorized(const HttpRequest& req) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (token_.empty() || !req.authorization.starts_with(kBearer)) return false;
  return constant_time_equal(req.authorization.substr(kBearer.size()), token_);
}

void AdminRouter::handle(const HttpRequest& req, HttpResponse& res) const {
  const bool mutating = req.method == "POST" || req.method == "PUT";
  const bool change = mutating && authorized(req);
  if (change && req.deferral != nullptr) return defer_change(req);  // answered later
  handle_now(req, res);
  // Without a deferral (tests) the change ran here: free what it retired.
  if (change) ctx_.registry->collect_retired();
}

void AdminRouter::handle_now(const HttpRequest& req, HttpResponse& res) const {
  try {
    route(req, res);
  } catch (const std::exception& e) {
    log::error("admin_request_failed", {{"target", req.target}, {"reason", e.what()}});
    res = HttpResponse{};
    res.json(500, json::error_body(std::string("internal error: ") + e.what()));
  }
}

void AdminRouter::serve_ui(std::string_view path, HttpResponse& res) const {
  if (ui_dir_.empty()) return res.json(404, json::error_body("this server has no web UI"));
  if (path == "/ui") {
    res.status = 301;
    res.headers.emplace_back("Location", "/ui/");
    return;
  }
  std::string_view file = path.substr(4);  // after "/ui/"
  if (file.empty()) file = "index.html";
  // Only plain relative names: no "..", no hidden files, nothing but [A-Za-z0-9._/-].
  const bool plain = file.find("..") == std::string_view::npos && file.front() != '.' &&
                     file.front() != '/' && std::all_of(file.begin(), file.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
                              c == '-' || c == '/';
                     });
  std::ifstream in;
  if (plain) in.open(ui_dir_ / std::string(file), std::ios::binary);
  if (!plain || !in) return res.json(404, json::error_body("no such file in the web UI"));
  std::stringstream content;
  content << in.rdbuf();
  static const std::map<std::string, std::string, std::less<>> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".json", "application/json"}};
  const auto ext = std::filesystem::path(std::string(file)).extension().string();
  const auto type = kTypes.find(ext);
  res.status = 200;
  res.content_type = type == kTypes.end() ? "application/octet-stream" : type->second;
  res.body = content.str();
  res.headers.emplace_back("Cache-Control", "no-cache");
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  res.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "frame-ancestors 'none'");
  res.headers.emplace_back("X-Frame-Options", "DENY");
}

void AdminRouter::route(const HttpRequest& req, HttpResponse& res) const {
  std::string_view path = req.target.substr(0, req.target.find('?'));
  const bool get = req.method == "GET";
  const bool mutating = req.method == "POST" || req.method == "PUT";
  const bool with_token = authorized(req);  // constant-time, so worth computing once
  if (mutating && !with_token) {
    res.json(401, json::error_body(
                      token_.empty() ? "this server has no admin token; start it with "
                                       "--admin-token-file or FORKLIFT_ADMIN_TOKEN"
                                     : "missing or wrong admin token (Authorization: Bearer ...)"));
    res.headers.emplace_back("WWW-Authenticate", "Bearer");
    return;
  }
  if (!host_allowed(req.host) && !with_token) {
    return res.json(
        403, json::error_body("this admin API answers unauthenticated requests only for an IP "
                              "address, localhost or a name given with --admin-host-name; send "
                              "the admin token or use one of those"));
  }
  ModelRegistry& registry = *ctx_.registry;
  const std::string actor = actor_of(req);

  if (path == "/healthz") {
    if (!get) return method_not_allowed(res, "GET");
    return res.json(200, "{\"live\":true}");
  }
  if (path == "/admin/login") {
    // The UI checks a token before it keeps it: reaching here means the token is right.
    if (req.method != "POST") return method_not_allowed(res, "POST");
    std::string out = "{\"ok\":true,\"actor\":";
    json::append_string(out, actor);
    return res.json(200, out + "}");
  }
  if (path == "/admin/timeseries") {
    if (!get) return method_not_allowed(res, "GET");
    if (ctx_.timeseries == nullptr) return res.json(200, "{\"interval_seconds\":1,\"models\":{}}");
    std::size_t seconds = 600;
    if (const auto q = req.target.find("seconds="); q != std::string_view::npos) {
      seconds = std::min<std::size_t>(
          600, std::strtoul(std::string(req.target.substr(q + 8)).c_str(), nullptr, 10));
    }
    return res.json(200, ctx_.timeseries->to_json(seconds));
  }
  if (path == "/ui" || path.starts_with("/ui/")) {
    if (!get) return method_not_allowed(res, "GET");
    return serve_ui(path, res);
  }
  if (path == "/admin/models") {
    if (!get) return method_not_allowed(res, "GET");
    const auto snap = registry.snapshot();
    std::string out = "{\"models\":[";
    bool first = true;
    for (const auto& [id, m] : snap->models) {
      if (!first) out.push_back(',');
      first = false;
      append_model(out, m, with_token);
    }
    out += "]}";
    return res.json(200, std::move(out));
  }
  if (path == "/admin/audit") {
    if (!get) return method_not_allowed(res, "GET");
    const auto entries = registry.audit();
    if (!entries.ok()) return respond_error(res, entries.status());
    std::string out = "{\"entries\":[";
    for (std::size_t i = 0; i < entries->size(); ++i) {
      if (i) out.push_back(',');
      append_audit_json(out, (*entries)[i]);
    }
    out += "]}";
    return res.json(200, std::move(out));
  }
  if (consume(path, "/admin/models/")) {
    const std::string_view id = path.substr(0, path.find('/'));
    const std::string_view rest =
        path.size() > id.size() ? path.substr(id.size() + 1) : std::string_view();
    if (!is_valid_model_id(id)) {
      return respond_error(res, NotFound("unknown model '" + std::string(id) + "'"));
    }
    if (rest.empty()) {
      if (!get) return method_not_allowed(res, "GET");
      const auto snap = registry.snapshot();
      auto it = snap->models.find(id);
      if (it == snap->models.end()) {
        return respond_error(res, NotFound("unknown model '" + std::string(id) + "'"));
      }
      std::string out;
      append_model(out, it->second, with_token);
      // What shadowing has shown so far (the UI's shadow agreement).
      out.pop_back();
      out += ",\"shadow_comparisons\":[";
      bool first = true;
      for (const auto& [key, s] : ctx_.metrics->shadows()) {
        if (std::get<0>(key) != id) continue;
        if (!first) out.push_back(',');
        first = false;
        out += "{\"primary_version\":";
        json::append_int(out, std::get<1>(key));
        out += ",\"shadow_version\":";
        json::append_int(out, std::get<2>(key));
        const std::pair<const char*, std::uint64_t> fields[] = {
            {"agree", s->agree.load(std::memory_order_relaxed)},
            {"disagree", s->disagree.load(std::memory_order_relaxed)},
            {"errors", s->errors.load(std::memory_order_relaxed)},
            {"dropped", s->dropped.load(std::memory_order_relaxed)}};
        for (const auto& [name, n] : fields) {
          out += ",\"";
          out += name;
          out += "\":";
          json::append_int(out, static_cast<std::int64_t>(n));
        }
        out.push_back('}');
      }
      out += "]}";
      return res.json(200, std::move(out));
    }
    if (rest == "deployment") {
      if (get) {
        const auto snap = registry.snapshot();
        auto it = snap->models.find(id);
        if (it == snap->models.end()) {
          return respond_error(res, NotFound("unknown model '" + std::string(id) + "'"));
        }
        return res.json(200, deployment_answer(id, it->second.control.deployment));
      }
      if (req.method != "PUT") return method_not_allowed(res, "GET, PUT");
      auto d = parse_deployment_json(*req.body);
      if (!d.ok()) return respond_error(res, d.status());
      auto set =
          registry.set_deployment(id, std::move(d).value(), actor, "deploy", forced(req.target));
      if (!set.ok()) return respond_error(res, set.status());
      return res.json(200, deployment_answer(id, *set));
    }
    if (rest == "promote") {
      if (req.method != "POST") return method_not_allowed(res, "POST");
      auto v = parse_promote_body(*req.body);
      if (!v.ok()) return respond_error(res, v.status());
      auto set = registry.promote(id, *v, actor, forced(req.target));
      if (!set.ok()) return respond_error(res, set.status());
      return res.json(200, deployment_answer(id, *set));
    }
    if (rest == "rollback") {
      if (req.method != "POST") return method_not_allowed(res, "POST");
      auto set = registry.rollback(id, actor);
      if (!set.ok()) return respond_error(res, set.status());
      return res.json(200, deployment_answer(id, *set));
    }
    // versions/{v}/reload: load the version's files again (model.yaml included).
    if (std::string_view tail = rest; consume(tail, "versions/") && tail.ends_with("/reload")) {
      if (req.method != "POST") return method_not_allowed(res, "POST");
      const std::int64_t v = parse_version(tail.substr(0, tail.size() - 7));
      if (v < 1)
        return respond_error(res, NotFound("no such version of model '" + std::string(id) + "'"));
      if (Status s = registry.reload_version(id, v, actor); !s.ok()) return respond_error(res, s);
      std::string out = "{\"model_id\":";
      json::append_string(out, id);
      out += ",\"version\":";
      json::append_int(out, v);
      out += ",\"reloaded\":true}";
      return res.json(200, std::move(out));
    }
  }
  // The Open Inference Protocol model repository extension, as Triton speaks it.
  if (path == "/v2/repository/index") {
    if (req.method != "POST") return method_not_allowed(res, "POST");
    const auto snap = registry.snapshot();
    std::string out = "[";
    bool first = true;
    for (const auto& [id, m] : snap->models) {
      for (const auto& [v, st] : m.versions) {
        if (!first) out.push_back(',');
        first = false;
        out += "{\"name\":";
        json::append_string(out, id);
        out += ",\"version\":\"" + std::to_string(v) + "\",\"state\":\"";
        // The repository extension's states; the version's own state is the one truth.
        out += st.state == VersionState::kReady ? "READY"
               : st.state == VersionState::kLoading || st.state == VersionState::kSelfTesting
                   ? "LOADING"
                   : "UNAVAILABLE";
        out += "\",\"reason\":";
        json::append_string(out, st.message);
        out.push_back('}');
      }
    }
    out += "]";
    return res.json(200, std::move(out));
  }
  if (consume(path, "/v2/repository/models/")) {
    const std::string_view id = path.substr(0, path.find('/'));
    const std::string_view action =
        path.size() > id.size() ? path.substr(id.size() + 1) : std::string_view();
    if (action == "load" || action == "unload") {
      if (req.method != "POST") return method_not_allowed(res, "POST");
      Status s =
          action == "load" ? registry.load_model(id, actor) : registry.unload_model(id, actor);
      if (!s.ok()) {
        // Triton answers a failed load or unload with 400 and {"error"}.
        return res.json(s.code() == StatusCode::kNotFound ? 404 : 400,
                        json::error_body(s.message()));
      }
      return res.json(200, "{}");
    }
  }
  res.json(404, json::error_body("no route for " + std::string(req.method) + " " +
                                 std::string(req.target.substr(0, 200))));
}

}  // namespace forklift
