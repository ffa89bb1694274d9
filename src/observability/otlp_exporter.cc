#include "observability/otlp_exporter.h"

#include <mutex>

#include "common/json_writer.h"

namespace forklift {
namespace {

void append_attribute(std::string& out, const SpanAttribute& a) {
  out += "{\"key\":";
  json::append_string(out, a.key);
  out += ",\"value\":{";
  if (const auto* s = std::get_if<std::string>(&a.value)) {
    out += "\"stringValue\":";
    json::append_string(out, *s);
  } else if (const auto* i = std::get_if<std::int64_t>(&a.value)) {
    // int64 as a decimal string: proto3's JSON mapping.
    out += "\"intValue\":\"" + std::to_string(*i) + "\"";
  } else if (const auto* d = std::get_if<double>(&a.value)) {
    out += "\"doubleValue\":";
    json::append_double(out, *d);
  } else {
    out += std::get<bool>(a.value) ? "\"boolValue\":true" : "\"boolValue\":false";
  }
  out += "}}";
}

void append_attributes(std::string& out, const std::vector<SpanAttribute>& attributes) {
  out += "[";
  for (std::size_t i = 0; i < attributes.size(); ++i) {
    if (i) out.push_back(',');
    append_attribute(out, attributes[i]);
  }
  out += "]";
}

void append_span(std::string& out, const Span& s) {
  out += "{\"traceId\":\"" + to_hex(s.trace_id) + "\",\"spanId\":\"" + to_hex(s.span_id) + "\"";
  if (s.parent) out += ",\"parentSpanId\":\"" + to_hex(*s.parent) + "\"";
  if (!s.trace_state.empty()) {
    out += ",\"traceState\":";
    json::append_string(out, s.trace_state);
  }
  out += ",\"name\":";
  json::append_string(out, s.name);
  out += ",\"kind\":" + std::to_string(static_cast<int>(s.kind));
  out += ",\"startTimeUnixNano\":\"" + std::to_string(s.start_unix_ns) + "\"";
  out += ",\"endTimeUnixNano\":\"" + std::to_string(s.end_unix_ns) + "\"";
  out += ",\"attributes\":";
  append_attributes(out, s.attributes);
  if (s.link) {
    out += ",\"links\":[{\"traceId\":\"" + to_hex(s.link->first) + "\",\"spanId\":\"" +
           to_hex(s.link->second) + "\"}]";
  }
  // STATUS_CODE_ERROR (2) with its message, else STATUS_CODE_UNSET (left out).
  if (s.error) {
    out += ",\"status\":{\"code\":2,\"message\":";
    json::append_string(out, s.status_message);
    out += "}";
  }
  out += "}";
}

}  // namespace

std::string otlp_json(const std::vector<Span>& spans, const OtlpOptions& o) {
  std::vector<SpanAttribute> resource{{"service.name", o.service_name}};
  if (!o.service_version.empty()) resource.push_back({"service.version", o.service_version});
  if (!o.service_instance.empty()) resource.push_back({"service.instance.id", o.service_instance});
  std::string out = "{\"resourceSpans\":[{\"resource\":{\"attributes\":";
  append_attributes(out, resource);
  out += "},\"scopeSpans\":[{\"scope\":{\"name\":\"forklift\"";
  if (!o.service_version.empty()) {
    out += ",\"version\":";
    json::append_string(out, o.service_version);
  }
  out += "},\"spans\":[";
  for (std::size_t i = 0; i < spans.size(); ++i) {
    if (i) out.push_back(',');
    append_span(out, spans[i]);
  }
  out += "]}]}]}";
  return out;
}

bool valid_otlp_endpoint(std::string_view e) {
  return (e.starts_with("http://") && e.size() > 7) || (e.starts_with("https://") && e.size() > 8);
}

OtlpHttpExporter::OtlpHttpExporter(OtlpOptions options) : options_(std::move(options)) {}

OtlpHttpExporter::~OtlpHttpExporter() = default;

Status OtlpHttpExporter::export_spans(const std::vector<Span>& spans) {
  const std::string body = otlp_json(spans, options_);
  HttpCall call;
  call.method = "POST";
  call.url = options_.endpoint;
  call.headers = {{"Content-Type", "application/json"}};
  call.body = body;
  call.timeout = options_.timeout;
  call.connect_timeout = options_.timeout;
  call.max_body_bytes = 64 << 10;  // a collector's answer is small; its content is not used
  auto answer = client_.call(call);
  if (!answer.ok()) return Unavailable("OTLP export failed: " + answer.status().message());
  if (answer->status < 200 || answer->status >= 300) {
    return Unavailable("OTLP export answered HTTP " + std::to_string(answer->status));
  }
  return Status::Ok();
}

}  // namespace forklift
