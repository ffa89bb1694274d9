// Spans to an OpenTelemetry collector over OTLP/HTTP, JSON encoding
// (https://opentelemetry.io/docs/specs/otlp/#otlphttp): one POST of an ExportTraceServiceRequest
// per batch, ids in hex as the OTLP JSON mapping asks, with a timeout. No OpenTelemetry C++ SDK is
// packaged for Debian: this is the small part of one that forklift needs (see
// docs/explanation/dependencies.md). The definitions it follows are in
// third_party/opentelemetry-proto.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "observability/tracer.h"

namespace forklift {

struct OtlpOptions {
  std::string endpoint = {};  // the traces URL, e.g. http://collector:4318/v1/traces
  std::string service_name = "forklift";
  std::string service_version = {};
  std::string service_instance = {};  // e.g. the host name
  std::chrono::milliseconds timeout{5000};
};

class OtlpHttpExporter final : public SpanExporter {
 public:
  explicit OtlpHttpExporter(OtlpOptions options);
  ~OtlpHttpExporter() override;
  OtlpHttpExporter(const OtlpHttpExporter&) = delete;
  OtlpHttpExporter& operator=(const OtlpHttpExporter&) = delete;

  // Fails (without retrying) on a connection error, a timeout or an answer other than 2xx.
  Status export_spans(const std::vector<Span>& spans) override;

 private:
  OtlpOptions options_;
  HttpClient client_;  // used only on the tracer's thread
};

// The ExportTraceServiceRequest for `spans`, in OTLP's JSON encoding.
std::string otlp_json(const std::vector<Span>& spans, const OtlpOptions& resource);

// Whether `endpoint` is an http:// or https:// URL (what --otlp-endpoint accepts).
bool valid_otlp_endpoint(std::string_view endpoint);

}  // namespace forklift
