#include "api/admin_router.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "api/admin/admin_endpoints.h"
#include "api/admin/job_endpoints.h"
#include "api/route_util.h"
#include "common/json_writer.h"
#include "common/thread_priority.h"
#include "core/repository.h"
#include "observability/log.h"

namespace forklift {
namespace {}  // namespace

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
  // Only plain relative names: nothing but [A-Za-z0-9._/-], no "..", no hidden file or folder
  // at any depth (a .git/ copied into the UI folder stays private), and only regular files.
  const bool plain = file.front() != '/' && file.find("..") == std::string_view::npos &&
                     file.front() != '.' && file.find("/.") == std::string_view::npos &&
                     std::all_of(file.begin(), file.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
                              c == '-' || c == '/';
                     });
  std::error_code ec;
  const std::filesystem::path where = ui_dir_ / std::string(file);
  std::ifstream in;
  if (plain && std::filesystem::is_regular_file(where, ec)) in.open(where, std::ios::binary);
  if (!in.is_open() || !in) return res.json(404, json::error_body("no such file in the web UI"));
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

namespace {

// Who acts: x-forklift-actor when it is 1 to 64 printable ASCII characters (it goes into the
// audit log, the state store and log lines, and the UI sends it from a header, which carries
// ASCII only), "admin" when absent. Anything else is refused rather than rewritten.
std::optional<std::string> actor_of(const HttpRequest& req) {
  if (req.actor.empty()) return std::string("admin");
  if (req.actor.size() > 64) return std::nullopt;
  for (char c : req.actor) {
    if (c < 0x20 || c > 0x7E) return std::nullopt;
  }
  return std::string(req.actor);
}

// Whether `rest` is "<id>/load" or "<id>/unload".
bool repository_action(std::string_view rest) {
  next_segment(rest);
  return rest == "load" || rest == "unload";
}

// Whether the call uses `method`; answers 405 naming it when not.
bool allow(const AdminCall& call, std::string_view method) {
  const std::string_view used = call.req.method;
  if (used == method) return true;
  method_not_allowed(call.res, method);
  return false;
}

// /admin/models/<id>/...: the model's own endpoints.
void route_model(const AdminCall& call, std::string_view rest) {
  const std::string_view id = next_segment(rest);
  if (!is_valid_model_id(id)) {
    return respond_error(call.res, NotFound("unknown model '" + std::string(id) + "'"));
  }
  const std::string_view method = call.req.method;
  if (rest.empty()) {
    if (allow(call, "GET")) get_model(call, id);
  } else if (rest == "deployment") {
    if (method == "GET") return get_deployment(call, id);
    if (method != "PUT") return method_not_allowed(call.res, "GET, PUT");
    put_deployment(call, id);
  } else if (rest == "promote") {
    if (allow(call, "POST")) post_promote(call, id);
  } else if (rest == "rollback") {
    if (allow(call, "POST")) post_rollback(call, id);
  } else if (rest == "rollout") {
    if (method == "GET") return get_rollout(call, id);
    if (method != "POST") return method_not_allowed(call.res, "GET, POST");
    post_rollout(call, id);
  } else if (rest == "rollout/pause" || rest == "rollout/resume" || rest == "rollout/abort") {
    if (allow(call, "POST")) post_rollout_step(call, id, rest.substr(8));
  } else if (consume(rest, "versions/") && rest.ends_with("/reload")) {
    if (allow(call, "POST")) post_reload(call, id, rest.substr(0, rest.size() - 7));
  } else {
    call.res.json(404, json::error_body("no route for " + std::string(call.req.method) + " " +
                                        std::string(call.req.target.substr(0, 200))));
  }
}

}  // namespace

void AdminRouter::route(const HttpRequest& req, HttpResponse& res) const {
  const bool with_token = authorized(req);  // constant-time, so worth computing once
  if (!admitted(req, with_token, res)) return;
  const std::optional<std::string> actor = actor_of(req);
  if (!actor) {
    return res.json(400, json::error_body("x-forklift-actor must be 1 to 64 printable ASCII "
                                          "characters (it names who acts in the audit log)"));
  }
  const AdminCall call{req, res, ctx_, with_token, *actor};
  std::string_view path = req.target.substr(0, req.target.find('?'));
  if (path == "/healthz") {
    if (allow(call, "GET")) res.json(200, "{\"live\":true}");
  } else if (path == "/admin/login") {
    if (allow(call, "POST")) post_login(call);
  } else if (path == "/admin/timeseries") {
    if (allow(call, "GET")) get_timeseries(call);
  } else if (path == "/ui" || path.starts_with("/ui/")) {
    if (allow(call, "GET")) serve_ui(path, res);
  } else if (path == "/admin/models") {
    if (allow(call, "GET")) get_models(call);
  } else if (path == "/admin/audit") {
    if (allow(call, "GET")) get_audit(call);
  } else if (consume(path, "/admin/models/")) {
    route_model(call, path);
  } else if (consume(path, "/admin/jobs")) {
    route_jobs(call, path);
  } else if (path == "/v2/repository/index") {
    if (allow(call, "POST")) post_repository_index(call);
  } else if (std::string_view rest = path;
             consume(rest, "/v2/repository/models/") && repository_action(rest)) {
    const std::string_view id = next_segment(rest);
    if (allow(call, "POST")) post_repository_load(call, id, rest == "load");
  } else {
    res.json(404, json::error_body("no route for " + std::string(req.method) + " " +
                                   std::string(req.target.substr(0, 200))));
  }
}

bool AdminRouter::admitted(const HttpRequest& req, bool with_token, HttpResponse& res) const {
  const bool mutating = req.method == "POST" || req.method == "PUT";
  if (mutating && !with_token) {
    res.json(401, json::error_body(
                      token_.empty() ? "this server has no admin token; start it with "
                                       "--admin-token-file or FORKLIFT_ADMIN_TOKEN"
                                     : "missing or wrong admin token (Authorization: Bearer ...)"));
    res.headers.emplace_back("WWW-Authenticate", "Bearer");
    return false;
  }
  if (!host_allowed(req.host) && !with_token) {
    res.json(403, json::error_body(
                      "this admin API answers unauthenticated requests only for an IP address, "
                      "localhost or a name given with --admin-host-name; send the admin token or "
                      "use one of those"));
    return false;
  }
  return true;
}

}  // namespace forklift
