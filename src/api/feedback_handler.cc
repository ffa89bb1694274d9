// POST /feedback and POST /v2/models/<id>/feedback: labels for earlier predictions
// (docs/reference/http-api.md, "Feedback").
#include <simdjson.h>

#include <algorithm>
#include <cmath>

#include "api/admin_router.h"
#include "api/handlers.h"
#include "common/json_writer.h"
#include "core/repository.h"

namespace forklift {
namespace {

constexpr std::size_t kMaxItems = 10000;
constexpr std::size_t kMaxRequestIdBytes = 128;

// Beyond this a label is a mistake or an attack: one label of 1e308 would swamp a version's
// mean error and blind the quality guardrail.
constexpr double kMaxLabelMagnitude = 1e12;

Result<double> label_of(simdjson::dom::element e) {
  bool b = false;
  if (!e.get_bool().get(b)) return b ? 1.0 : 0.0;
  double d = 0;
  if (e.get_double().get(d)) return InvalidArgument("a label must be a number or a boolean");
  if (!(std::fabs(d) <= kMaxLabelMagnitude)) {
    return InvalidArgument("a label must be a number from -1e12 to 1e12");
  }
  return d;
}

// {"request_id" | "id" | "key": "...", "label": x | "labels": [x, ...]}
Result<FeedbackItem> item_of(simdjson::dom::element e) {
  simdjson::dom::object obj;
  if (e.get_object().get(obj)) return InvalidArgument("each feedback item must be an object");
  FeedbackItem item;
  bool has_id = false, has_label = false;
  for (auto [key, value] : obj) {
    if (key == "request_id" || key == "id" || key == "key") {
      std::string_view id;
      if (value.get_string().get(id) || id.empty() || id.size() > kMaxRequestIdBytes ||
          std::any_of(id.begin(), id.end(), [](char c) { return c <= 0x20 || c >= 0x7f; })) {
        return InvalidArgument("'" + std::string(key) +
                               "' must be the prediction's request id: 1 to 128 printable "
                               "characters");
      }
      if (has_id) return InvalidArgument("give one of request_id, id or key");
      item.request_id = std::string(id);
      has_id = true;
    } else if (key == "label") {
      if (has_label) return InvalidArgument("give one of label or labels");
      auto l = label_of(value);
      if (!l.ok()) return l.status();
      item.labels = {*l};
      has_label = true;
    } else if (key == "labels") {
      if (has_label) return InvalidArgument("give one of label or labels");
      simdjson::dom::array arr;
      if (value.get_array().get(arr)) return InvalidArgument("'labels' must be an array");
      for (auto v : arr) {
        if (item.labels.size() >= 1000) return InvalidArgument("at most 1000 labels per request");
        auto l = label_of(v);
        if (!l.ok()) return l.status();
        item.labels.push_back(*l);
      }
      has_label = true;
    } else {
      return InvalidArgument("unknown field '" + std::string(key.substr(0, 64)) +
                             "' (request_id, label, labels)");
    }
  }
  if (!has_id) return InvalidArgument("a feedback item needs the prediction's request_id");
  if (!has_label || item.labels.empty()) return InvalidArgument("a feedback item needs a label");
  return item;
}

Result<std::vector<FeedbackItem>> parse_feedback(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(body).get(root)) {
    return InvalidArgument(std::string("malformed JSON: ") + simdjson::error_message(error));
  }
  if (!root.is_object()) return InvalidArgument("a feedback body must be an object");
  std::vector<FeedbackItem> items;
  simdjson::dom::array batch;
  if (auto list = root["feedback"]; list.error() != simdjson::NO_SUCH_FIELD) {
    if (list.get_array().get(batch)) return InvalidArgument("'feedback' must be an array of items");
    for (auto e : batch) {
      if (items.size() >= kMaxItems) return InvalidArgument("at most 10000 items per call");
      auto item = item_of(e);
      if (!item.ok()) {
        return InvalidArgument("item " + std::to_string(items.size()) + ": " +
                               item.status().message());
      }
      items.push_back(std::move(item).value());
    }
    if (items.empty()) return InvalidArgument("'feedback' holds no items");
    return items;
  }
  auto item = item_of(root);
  if (!item.ok()) return item.status();
  items.push_back(std::move(item).value());
  return items;
}

}  // namespace

void handle_feedback(const ApiContext& ctx, std::string_view model_id, const HttpRequest& req,
                     HttpResponse& res) {
  if (ctx.feedback == nullptr) {
    return res.json(404, json::error_body("feedback is off on this server (--feedback-memory-mb "
                                          "0)"));
  }
  if (!ctx.feedback_token.empty()) {
    constexpr std::string_view kBearer = "Bearer ";
    if (!req.authorization.starts_with(kBearer) ||
        !constant_time_equal(req.authorization.substr(kBearer.size()), ctx.feedback_token)) {
      res.json(401,
               json::error_body("missing or wrong feedback token (Authorization: Bearer ...)"));
      res.headers.emplace_back("WWW-Authenticate", "Bearer");
      return;
    }
  }
  if (!model_id.empty()) {
    const auto snapshot = ctx.registry->snapshot();
    if (!snapshot->models.contains(model_id)) {
      return respond_error(res, NotFound("unknown model '" + std::string(model_id) + "'"));
    }
  }
  auto items = parse_feedback(*req.body);
  if (!items.ok()) return respond_error(res, items.status());
  const FeedbackOutcome out = ctx.feedback->add(*items, model_id);
  std::string body = "{\"matched\":";
  json::append_int(body, static_cast<std::int64_t>(out.matched));
  body += ",\"pending\":";
  json::append_int(body, static_cast<std::int64_t>(out.pending));
  body += ",\"unmatched\":";
  json::append_int(body, static_cast<std::int64_t>(out.unmatched));
  body += ",\"refused\":";
  json::append_int(body, static_cast<std::int64_t>(out.refused));
  body += ",\"problems\":[";
  for (std::size_t i = 0; i < out.problems.size(); ++i) {
    if (i) body.push_back(',');
    json::append_string(body, out.problems[i]);
  }
  body += "]}";
  // Every item refused: the caller's mistake, said as one.
  res.json(out.refused == items->size() ? 400 : 200, std::move(body));
}

}  // namespace forklift
