// W3C trace context parsing, parent-based ratio sampling, the bounded export queue, what a
// request records, and the OTLP JSON it becomes.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <condition_variable>
#include <mutex>

#include "observability/otlp_exporter.h"
#include "observability/trace_context.h"
#include "observability/tracer.h"

namespace forklift {
namespace {

constexpr char kParent[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceContext, ReadsVersionZeroExactly) {
  auto ctx = parse_traceparent(kParent, "vendor=abc");
  ASSERT_TRUE(ctx);
  EXPECT_EQ(to_hex(ctx->trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(to_hex(ctx->span_id), "00f067aa0ba902b7");
  EXPECT_TRUE(ctx->sampled);
  EXPECT_EQ(ctx->tracestate, "vendor=abc");
  EXPECT_FALSE(
      parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")->sampled);
  EXPECT_EQ(format_traceparent(ctx->trace_id, ctx->span_id, true), kParent);
}

TEST(TraceContext, RefusesWhatTheSpecificationRefuses) {
  for (const char* bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",         // no flags
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",      // uppercase
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",      // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",      // zero span id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",      // version ff
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz",  // v00 with more
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",      // separators
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",      // not hex
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
       }) {
    EXPECT_FALSE(parse_traceparent(bad)) << bad;
  }
  // A later version is read by its first four fields.
  EXPECT_TRUE(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"));
  // An unusable tracestate is dropped, not the context.
  auto ctx = parse_traceparent(kParent, std::string(600, 'a'));
  ASSERT_TRUE(ctx);
  EXPECT_EQ(ctx->tracestate, "");
  EXPECT_EQ(parse_traceparent(kParent, "a=\x01")->tracestate, "");
}

TEST(TraceContext, NewIdsAreRandomAndNeverZero) {
  EXPECT_NE(new_trace_id(), new_trace_id());
  EXPECT_NE(new_span_id(), SpanId{});
}

// What a FakeExporter was sent; outlives the tracer that owns the exporter.
struct Seen {
  std::mutex mu;
  std::condition_variable released;
  bool hold = false;
  std::vector<Span> spans;
};

// Keeps what it is sent; can be made to wait, to fill the tracer's queue.
class FakeExporter final : public SpanExporter {
 public:
  explicit FakeExporter(std::shared_ptr<Seen> seen = std::make_shared<Seen>())
      : seen_(std::move(seen)) {}
  Status export_spans(const std::vector<Span>& spans) override {
    std::unique_lock lock(seen_->mu);
    seen_->released.wait(lock, [this] { return !seen_->hold; });
    for (const Span& s : spans) seen_->spans.push_back(s);
    return Status::Ok();
  }

 private:
  std::shared_ptr<Seen> seen_;
};

TEST(Tracer, SamplesByParentElseByRatioOfTraceIds) {
  Tracer half(TracerOptions{.sample_ratio = 0.5}, std::make_unique<FakeExporter>());
  TraceId low{}, high{};
  low[15] = 1;
  high[8] = 0xff;
  EXPECT_TRUE(half.sample(nullptr, low));
  EXPECT_FALSE(half.sample(nullptr, high));
  TraceContext parent;
  parent.sampled = true;
  EXPECT_TRUE(half.sample(&parent, high));  // the caller decided
  parent.sampled = false;
  EXPECT_FALSE(half.sample(&parent, low));
  Tracer none(TracerOptions{.sample_ratio = 0}, std::make_unique<FakeExporter>());
  EXPECT_FALSE(none.sample(nullptr, low));
  int sampled = 0;
  Tracer tenth(TracerOptions{.sample_ratio = 0.1}, std::make_unique<FakeExporter>());
  for (int i = 0; i < 10000; ++i) sampled += tenth.sample(nullptr, new_trace_id()) ? 1 : 0;
  EXPECT_GT(sampled, 800);
  EXPECT_LT(sampled, 1200);
}

TEST(Tracer, AFullQueueDropsAndCountsInsteadOfWaiting) {
  auto seen = std::make_shared<Seen>();
  seen->hold = true;
  {
    Tracer tracer(TracerOptions{.max_queue_spans = 4,
                                .max_batch_spans = 2,
                                .flush_interval = std::chrono::milliseconds(1)},
                  std::make_unique<FakeExporter>(seen));
    for (int i = 0; i < 20; ++i) tracer.submit(std::vector<Span>(1));
    // 4 fit the queue, and at most 2 of those were taken by the export that waits.
    EXPECT_GE(tracer.stats().dropped, 14u);
    {
      std::lock_guard lock(seen->mu);
      seen->hold = false;
    }
    seen->released.notify_all();
  }
}

TEST(Tracer, ARequestsSpansShareItsTraceAndNameTheirParent) {
  auto seen = std::make_shared<Seen>();
  {
    Tracer tracer(TracerOptions{.flush_interval = std::chrono::milliseconds(1)},
                  std::make_unique<FakeExporter>(seen));
    const auto start = std::chrono::system_clock::now() - std::chrono::milliseconds(1);
    auto trace = start_request_trace(&tracer, kParent, "k=v", "POST /infer", start, false);
    ASSERT_TRUE(trace && trace->sampled());
    trace->child("parse", start, start + std::chrono::microseconds(10));
    trace->child("predict", start + std::chrono::microseconds(10),
                 start + std::chrono::microseconds(60), {{"forklift.rows", std::int64_t{3}}});
    trace->add_attribute("http.response.status_code", std::int64_t{200});
    trace->finish();
    EXPECT_NE(trace->server_timing().find("predict;dur=0.050"), std::string::npos)
        << trace->server_timing();
    trace.reset();  // the last holder: the spans go to the tracer
  }
  ASSERT_EQ(seen->spans.size(), 3u);
  const Span& server = seen->spans[0];
  EXPECT_EQ(to_hex(server.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(to_hex(*server.parent), "00f067aa0ba902b7");
  EXPECT_EQ(server.trace_state, "k=v");
  EXPECT_EQ(server.kind, SpanKind::kServer);
  for (std::size_t i = 1; i < 3; ++i) {
    EXPECT_EQ(seen->spans[i].trace_id, server.trace_id);
    EXPECT_EQ(*seen->spans[i].parent, server.span_id);
    EXPECT_GE(seen->spans[i].start_unix_ns, server.start_unix_ns);
    EXPECT_LE(seen->spans[i].end_unix_ns, server.end_unix_ns);
  }
}

TEST(Tracer, NothingIsRecordedForARequestNeitherSampledNorTimed) {
  Tracer tracer(TracerOptions{.sample_ratio = 0}, std::make_unique<FakeExporter>());
  const auto now = std::chrono::system_clock::now();
  EXPECT_EQ(start_request_trace(&tracer, "", "", "x", now, false), nullptr);
  EXPECT_EQ(start_request_trace(nullptr, kParent, "", "x", now, false), nullptr);
  auto timed = start_request_trace(nullptr, "", "", "x", now, true);
  ASSERT_TRUE(timed);
  EXPECT_FALSE(timed->sampled());
}

TEST(OtlpJson, IsTheExportRequestsJsonMapping) {
  Span s;
  s.trace_id = new_trace_id();
  s.span_id = new_span_id();
  s.parent = new_span_id();
  s.name = "predict \"quoted\"";
  s.start_unix_ns = 1700000000000000001ULL;
  s.end_unix_ns = 1700000000000000002ULL;
  s.attributes = {{"a", std::string("x")}, {"b", std::int64_t{-3}}, {"c", 0.5}, {"d", true}};
  s.error = true;
  s.status_message = "failed";
  s.link = std::make_pair(new_trace_id(), new_span_id());
  const std::string text = otlp_json({s}, OtlpOptions{.service_name = "svc"});
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(text).get(root), simdjson::SUCCESS) << text;
  auto span = root["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"].at(0);
  EXPECT_EQ(std::string_view(span["traceId"]), to_hex(s.trace_id));
  EXPECT_EQ(std::string_view(span["startTimeUnixNano"]), "1700000000000000001");
  EXPECT_EQ(std::string_view(span["attributes"].at(1)["value"]["intValue"]), "-3");
  EXPECT_EQ(std::int64_t(span["status"]["code"]), 2);
  EXPECT_EQ(std::string_view(span["links"].at(0)["spanId"]), to_hex(s.link->second));
  EXPECT_EQ(std::string_view(root["resourceSpans"].at(0)["resource"]["attributes"].at(
                0)["value"]["stringValue"]),
            "svc");
  EXPECT_TRUE(valid_otlp_endpoint("http://127.0.0.1:4318/v1/traces"));
  EXPECT_FALSE(valid_otlp_endpoint("file:///etc/passwd"));
}

TEST(OtlpExporter, AnUnreachableCollectorIsAFailureNotAHang) {
  OtlpHttpExporter exporter(OtlpOptions{.endpoint = "http://127.0.0.1:1/v1/traces",
                                        .timeout = std::chrono::milliseconds(500)});
  EXPECT_FALSE(exporter.export_spans({Span{}}).ok());
}

}  // namespace
}  // namespace forklift
