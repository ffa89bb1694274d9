#include "server/http_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include "common/json_writer.h"
#include "common/request_id.h"
#include "common/thread_priority.h"
#include "observability/log.h"
#include "server/request_framing.h"

namespace forklift {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

std::string_view to_std(boost::beast::string_view s) {
  return {s.data(), s.size()};
}

using Clock = std::chrono::steady_clock;
constexpr auto kSweepInterval = std::chrono::milliseconds(500);
// While draining, more often: the loop (and so the drain) ends soon after its last connection.
constexpr auto kDrainSweepInterval = std::chrono::milliseconds(50);
// How long an idle kept-alive connection stays open once the server drains (see drain()).
constexpr auto kDrainIdleGrace = std::chrono::milliseconds(200);
constexpr auto kAcceptPause = std::chrono::milliseconds(100);
constexpr auto kAcceptLogInterval = std::chrono::seconds(10);

// What the loop asks of every connection, plain or TLS.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void drain() = 0;
  virtual void expire_if_late(Clock::time_point now) = 0;
};

// One event loop and what lives on it. Member order matters for destruction: if the loop was
// stopped with connections still open, destroying `ioc` destroys their sessions, which erase
// themselves from `sessions` and count themselves out of `stats`, so both must outlive the
// io_context. Shared: an answer still pending in another thread (a batching queue) keeps its
// loop alive, so that it posts into a stopped loop rather than a destroyed one.
struct Worker : std::enable_shared_from_this<Worker> {
  explicit Worker(std::shared_ptr<ConnectionStats> s) : stats(std::move(s)) {}
  std::shared_ptr<ConnectionStats> stats;
  std::unordered_set<SessionBase*> sessions;  // touched only on this loop's thread
  asio::io_context ioc{1};
  std::unique_ptr<tcp::acceptor> acceptor;
  // Closes connections past their deadline. One coarse timer per loop instead of one per read
  // and write: per-operation timers cost three timerfd_settime calls per request (measured).
  std::unique_ptr<asio::steady_timer> sweeper;
  // Waits before accepting again after accept() failed for want of descriptors or memory:
  // retrying at once would spin a core on the same error.
  std::unique_ptr<asio::steady_timer> accept_pause;
  bool draining = false;
  std::thread thread;
};

}  // namespace

struct HttpServer::Impl {
  ServerOptions options;
  const RequestHandler& handler;
  std::vector<std::shared_ptr<Worker>> workers;
  std::uint16_t bound_port = 0;
  std::shared_ptr<ConnectionStats> stats =
      options.stats ? options.stats : std::make_shared<ConnectionStats>();
  std::optional<ssl::context> tls;  // set when the listener speaks TLS
  // When (steady clock, seconds) this listener last logged an accept failure: one line per
  // kAcceptLogInterval, whichever of its loops failed.
  std::atomic<std::int64_t> accept_failure_logged{0};

  Impl(ServerOptions o, const RequestHandler& r) : options(std::move(o)), handler(r) {}
  void accept(Worker& w);
  void start_session(Worker& w, tcp::socket socket);
  void accept_queued(Worker& w);
  void pause_accepting(Worker& w, const boost::system::error_code& ec);
  void refuse(tcp::socket socket);
};

namespace {

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// A deferred answer, finished from another thread (a batching queue); copies share one state.
// Until the answer is posted to the loop, the state keeps the loop running (a draining server
// waits for it) and the Worker alive (so that an answer given after the server stopped goes to a
// stopped loop, not a destroyed one). It never drops the session's last reference itself but
// hands it to the loop: a session destroyed on another thread would race the loop on the
// Worker's session set (seen under ThreadSanitizer when the loop had sent the answer before the
// queue's thread let go of its function).
template <class S>
class PendingAnswer {
 public:
  PendingAnswer(std::shared_ptr<S> session, std::shared_ptr<Worker> worker)
      : state_(std::make_shared<State>(std::move(session), std::move(worker))) {}

  void operator()(FillResponse fill) const { state_->resume(std::move(fill)); }

 private:
  struct State {
    State(std::shared_ptr<S> s, std::shared_ptr<Worker> w)
        : session(std::move(s)), worker(std::move(w)), work(asio::make_work_guard(worker->ioc)) {}
    State(const State&) = delete;
    State& operator=(const State&) = delete;
    // Dropped without an answer (a bug in the code that deferred): the client still gets one.
    ~State() {
      resume([](HttpResponse& res) {
        res.json(500, json::error_body("the request was dropped before it was answered"));
      });
    }

    void resume(FillResponse fill) {
      if (!session) return;  // a second call: the answer is already on its way
      asio::post(worker->ioc,
                 [s = std::move(session), fill = std::move(fill)] { s->finish_deferred(fill); });
      work.reset();
    }

    std::shared_ptr<S> session;
    std::shared_ptr<Worker> worker;  // declared before `work`, which needs the loop to let go
    asio::executor_work_guard<asio::io_context::executor_type> work;
  };
  std::shared_ptr<State> state_;
};

// One connection: reads requests, hands them to the handler, writes the answers. `Stream` is a
// plain TCP stream or a TLS stream over one; the TLS form first does the handshake (within the
// read timeout) and ends with a TLS shutdown.
template <class Stream>
class Session final : public SessionBase,
                      public std::enable_shared_from_this<Session<Stream>>,
                      public ResponseDeferral {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;

 public:
  template <class... StreamArgs>
  Session(Worker& worker, const ServerOptions& options, const RequestHandler& handler,
          StreamArgs&&... stream_args)
      : stream_(std::forward<StreamArgs>(stream_args)...),
        buffer_(read_buffer_cap(options.max_header_bytes)),
        worker_(worker),
        options_(options),
        handler_(handler),
        stats_(*worker.stats) {
    worker_.sessions.insert(this);
    stats_.open.fetch_add(1, std::memory_order_relaxed);
  }
  ~Session() {
    worker_.sessions.erase(this);
    stats_.open.fetch_sub(1, std::memory_order_relaxed);
  }

  void start() {
    // Room for a typical request in one recv; Beast otherwise starts at 512 bytes and needs two.
    buffer_.reserve(16 * 1024);
    if constexpr (kTls) {
      // The handshake is part of receiving the first request: the read timeout bounds it.
      reading_ = true;
      started_ = true;
      deadline_ = Clock::now() + options_.read_timeout;
      stream_.async_handshake(
          ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
            self->reading_ = false;
            if (ec) {
              self->stats_.tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
              return self->abort();
            }
            self->read();
          });
    } else {
      read();
    }
  }

  // Run by a PendingAnswer on the loop's thread, with the code that fills the deferred answer.
  void finish_deferred(const FillResponse& fill) {
    fill(*response_);
    finish();
  }

  // Called on the loop's thread when the server drains: an idle connection closes soon; one in
  // the middle of a request is answered first (with Connection: close). A request whose bytes
  // have arrived but not been read yet (a kept-alive client that sent its next request just
  // before the drain) counts as started: closing would drop a request the client already sent.
  // An idle one gets kDrainIdleGrace first: a request its client sent just before the drain may
  // still be on its way through a loaded kernel (seen on a busy machine: sent, not yet
  // readable); one that arrives meanwhile is read and answered as started.
  void drain() override {
    if (!reading_ || (parser_ && parser_->got_some()) || request_waiting()) return;
    deadline_ = std::min(deadline_, Clock::now() + kDrainIdleGrace);
  }

  // Called by the sweeper: a connection idle, reading or writing for too long is closed. The
  // read timeout counts from a request's first bytes (seen here, to within one sweep), so a
  // client trickling a byte at a time (slowloris) is cut off after --read-timeout, not after
  // the idle timeout.
  void expire_if_late(Clock::time_point now) override {
    if (reading_ && !started_ && (buffer_.size() > 0 || (parser_ && parser_->got_some()))) {
      started_ = true;
      deadline_ = now + options_.read_timeout;
    }
    if (now > deadline_) abort();
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(options_.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
    reading_ = true;
    started_ = buffer_.size() > 0;  // the next request's first bytes came with the last one
    deadline_ = Clock::now() + (started_ ? options_.read_timeout : options_.idle_timeout);
    read_request();
  }

  void read_request() {
    http::async_read(
        read_stream(), buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    reading_ = false;
    if (ec == http::error::body_limit) {
      return reply_error(413, "request body is larger than the limit of " +
                                  std::to_string(options_.max_body_bytes) + " bytes");
    }
    if (ec == http::error::buffer_overflow) {
      // One element that the parser needs whole (a header section, a chunk-size line, the
      // trailers) outgrew the read buffer's cap.
      return reply_error(431,
                         "a header section, chunk-size line or trailer section is larger "
                         "than the read buffer's " +
                             std::to_string(read_buffer_cap(options_.max_header_bytes)) + " bytes");
    }
    if (ec == http::error::header_limit) {
      return reply_error(431, "request headers are larger than the limit of " +
                                  std::to_string(options_.max_header_bytes) + " bytes");
    }
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || ec == asio::error::eof ||
        ec == asio::error::bad_descriptor || ec == ssl::error::stream_truncated) {
      return close();
    }
    if (ec) return reply_error(400, std::string("malformed HTTP request: ") + ec.message());

    auto& req = parser_->get();
    // RFC 9112 6.3: a Transfer-Encoding other than exactly "chunked" leaves the body's length
    // unknown; reading on would take the body for the next request (request smuggling).
    if (Status framing = check_request_framing(req); !framing.ok()) {
      return reply_error(400, framing.message());
    }
    if (std::size_t fields = std::distance(req.begin(), req.end());
        fields > options_.max_header_count) {
      return reply_error(431, "the request has " + std::to_string(fields) +
                                  " header fields; the limit is " +
                                  std::to_string(options_.max_header_count));
    }
    HttpRequest request;
    // HEAD is GET without the body (health checkers use it): the routes see a GET, and send()
    // leaves the body out but keeps its Content-Length.
    head_ = req.method() == http::verb::head;
    request.method = head_ ? std::string_view("GET") : to_std(req.method_string());
    request.head = head_;
    request.target = to_std(req.target());
    request.body = &req.body();
    if (auto auth = req.find(http::field::authorization); auth != req.end()) {
      request.authorization = to_std(auth->value());
    }
    if (auto host = req.find(http::field::host); host != req.end()) {
      request.host = to_std(host->value());
    }
    if (auto tp = req.find("traceparent"); tp != req.end()) {
      request.traceparent = to_std(tp->value());
      if (auto ts = req.find("tracestate"); ts != req.end())
        request.tracestate = to_std(ts->value());
    }
    request.server_timing = req.find("x-forklift-server-timing") != req.end();
    if (auto actor = req.find("x-forklift-actor"); actor != req.end()) {
      request.actor = to_std(actor->value());
    }
    request.deferral = this;
    const auto rid = req.find("x-request-id");
    response_.emplace();
    response_->request_id =
        request_id_for(rid == req.end() ? std::string_view() : to_std(rid->value()));
    deferred_ = false;
    handler_.handle(request, *response_);
    if (deferred_) return;  // finished later by the function defer() handed out
    finish();
  }

  ResumeResponse defer(std::chrono::seconds answer_within) override {
    deferred_ = true;
    deadline_ =
        Clock::now() + (answer_within != kReadTimeout ? answer_within : options_.read_timeout);
    return PendingAnswer<Session>(shared_from_this(), worker_.shared_from_this());
  }

  // Sends the response to the request the parser holds.
  void finish() {
    const auto& req = parser_->get();
    send(std::move(*response_), req.keep_alive() && !worker_.draining, req.version());
    response_.reset();
  }

  void reply_error(unsigned status, const std::string& message) {
    HttpResponse response;
    response.request_id = make_request_id();
    response.json(status, json::error_body(message));
    // The rest of the request was not read, so the connection cannot be reused.
    send(std::move(response), false, 11);
  }

  // The response goes out as one buffer written by hand: Beast's serializer walked a chain of
  // buffer views per request that cost more than building these few lines (measured).
  void send(HttpResponse response, bool keep_alive, unsigned version) {
    std::string& wire = wire_;
    wire.clear();
    wire.reserve(160 + response.content_type.size() + response.request_id.size() +
                 response.body.size());
    wire += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    wire += std::to_string(response.status);
    wire += ' ';
    const auto reason = http::obsolete_reason(static_cast<http::status>(response.status));
    wire.append(reason.data(), reason.size());
    wire += "\r\nServer: forklift\r\nContent-Type: ";
    wire += response.content_type;
    wire += "\r\nx-request-id: ";
    wire += response.request_id;
    for (const auto& [name, value] : response.headers) {
      wire += "\r\n";
      wire += name;
      wire += ": ";
      wire += value;
    }
    wire += "\r\nContent-Length: ";
    wire += std::to_string(response.body.size());
    if (!keep_alive) {
      wire += "\r\nConnection: close";
    } else if (version == 10) {
      wire += "\r\nConnection: keep-alive";
    }
    wire += "\r\n\r\n";
    if (!head_) wire += response.body;
    head_ = false;
    keep_alive_ = keep_alive;
    deadline_ = Clock::now() + options_.read_timeout;
    asio::async_write(
        write_stream(), asio::buffer(wire),
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
  }

  // Whether a next request has arrived, read into the buffer or still in the socket.
  bool request_waiting() {
    if (buffer_.size() > 0) return true;
    beast::error_code ec;
    return socket().available(ec) > 0 && !ec;
  }

  void on_write(beast::error_code ec) {
    // Draining: a kept-alive connection closes after this answer, unless its client has already
    // sent the next request (answered too, with Connection: close: one more at most).
    const bool keep = !ec && keep_alive_ && (!worker_.draining || request_waiting());
    if (wire_.capacity() > 64 * 1024) std::string().swap(wire_);  // after a large answer
    if (!keep) return close();
    read();
  }

  // Plain requests are read from, and responses written to, the socket itself: tcp_stream's
  // own paths add nothing here (the sweeper keeps the deadlines).
  auto& write_stream() {
    if constexpr (kTls) {
      return stream_;
    } else {
      return stream_.socket();
    }
  }
  auto& read_stream() { return write_stream(); }

  tcp::socket& socket() { return beast::get_lowest_layer(stream_).socket(); }

  void close() {
    if constexpr (kTls) {
      // close_notify, then the socket; a peer that never answers it is cut off by the sweeper.
      if (!tls_closing_) {
        tls_closing_ = true;
        deadline_ = Clock::now() + std::chrono::seconds(1);
        stream_.async_shutdown([self = shared_from_this()](beast::error_code) { self->abort(); });
        return;
      }
    }
    beast::error_code ec;
    socket().shutdown(tcp::socket::shutdown_send, ec);
    socket().close(ec);
  }

  // Closes at once; the pending operation completes with operation_aborted and ends the session.
  void abort() {
    beast::error_code ec;
    socket().shutdown(tcp::socket::shutdown_both, ec);
    socket().close(ec);
  }

  // What the parser has not consumed yet. Capped: a body streams through it into the request,
  // so it only ever needs one whole header section, chunk-size line or trailer section.
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string wire_;  // the response being written
  bool keep_alive_ = false;
  bool head_ = false;                     // the request being answered is a HEAD
  std::optional<HttpResponse> response_;  // the answer being prepared
  bool deferred_ = false;                 // the handler will finish it later
  Worker& worker_;
  const ServerOptions& options_;
  const RequestHandler& handler_;
  ConnectionStats& stats_;  // the Worker's, which outlives the session
  bool reading_ = false;
  bool started_ = false;      // some of the request being read has arrived
  bool tls_closing_ = false;  // the TLS shutdown was started
  Clock::time_point deadline_ = Clock::time_point::max();
};

// Keeps running while the server drains: a connection stuck in the middle of a request (or a
// TLS peer that never answers the close) must not hold the drain for its whole grace period.
void sweep(Worker& w) {
  w.sweeper->expires_after(w.draining ? kDrainSweepInterval : kSweepInterval);
  w.sweeper->async_wait([&w](beast::error_code ec) {
    if (ec) return;  // cancelled (the drain restarts it at its own pace)
    const auto now = Clock::now();
    // Copy: an expired session may be destroyed, which erases it from the set.
    std::vector<SessionBase*> sessions(w.sessions.begin(), w.sessions.end());
    for (SessionBase* s : sessions) s->expire_if_late(now);
    if (w.draining && w.sessions.empty()) return;  // nothing left to watch: let the loop end
    sweep(w);
  });
}

}  // namespace

void HttpServer::Impl::accept(Worker& w) {
  w.acceptor->async_accept(w.ioc, [this, &w](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !w.acceptor->is_open()) return;
      if (ec != asio::error::connection_aborted) return pause_accepting(w, ec);
    } else {
      start_session(w, std::move(socket));
    }
    accept(w);
  });
}

void HttpServer::Impl::start_session(Worker& w, tcp::socket socket) {
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  if (stats->open.load(std::memory_order_relaxed) >=
      static_cast<std::int64_t>(options.max_connections)) {
    refuse(std::move(socket));
  } else if (tls) {
    std::make_shared<Session<TlsStream>>(w, options, handler, std::move(socket), *tls)->start();
  } else {
    std::make_shared<Session<PlainStream>>(w, options, handler, std::move(socket))->start();
  }
}

// On the drain, before the listener closes: the connections the kernel has completed but this
// loop has not accepted yet. Closing the listener would reset them, and their clients may have
// sent a request already (seen under load: "connection reset by peer" on a request sent just
// before SIGTERM); taken here, they are drained like every other connection.
// At most as many as the kernel queues for one listener (SOMAXCONN): connections still arriving
// at that rate (a flood, a balancer that has not noticed the drain) must not hold the loop, and
// so the drain, past its grace period.
void HttpServer::Impl::accept_queued(Worker& w) {
  constexpr int kMostQueued = 4096;
  beast::error_code ec;
  w.acceptor->non_blocking(true, ec);
  // Otherwise a connection that aborted in the queue makes asio's synchronous accept wait, with
  // no time limit, for the next one.
  if (!ec) w.acceptor->set_option(asio::socket_base::enable_connection_aborted(true), ec);
  for (int n = 0; !ec && n < kMostQueued; ++n) {
    tcp::socket socket(w.ioc);
    w.acceptor->accept(socket, ec);  // would_block once the queue is empty
    if (ec == asio::error::connection_aborted || ec.value() == EPROTO) {
      ec = {};  // that one is gone; the next may not be
    } else if (!ec) {
      start_session(w, std::move(socket));
    }
  }
}

// accept() failed with the connection still queued (EMFILE, ENFILE, ENOBUFS, ENOMEM): the loop
// waits kAcceptPause before trying again, counts each failure and logs at most one line per
// kAcceptLogInterval for this listener.
void HttpServer::Impl::pause_accepting(Worker& w, const beast::error_code& ec) {
  stats->accept_failures.fetch_add(1, std::memory_order_relaxed);
  const std::int64_t now = Clock::now().time_since_epoch() / std::chrono::seconds(1);
  std::int64_t last = accept_failure_logged.load(std::memory_order_relaxed);
  if (now - last >= kAcceptLogInterval.count() &&
      accept_failure_logged.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    log::warn("accept_failed",
              {{"listener", options.host + ":" + std::to_string(bound_port)},
               {"reason", ec.message()},
               {"failures_total",
                static_cast<std::int64_t>(stats->accept_failures.load(std::memory_order_relaxed))},
               {"effect", "new connections wait in the kernel's queue; retrying every 100 ms"}});
  }
  w.accept_pause->expires_after(kAcceptPause);
  w.accept_pause->async_wait([this, &w](beast::error_code wait_ec) {
    if (wait_ec || !w.acceptor->is_open()) return;
    accept(w);
  });
}

// Over --max-connections: a short 503 written without waiting (the socket's send buffer takes
// it), then closed. Nothing of the request is read, so no loop time is spent on it. A TLS
// listener just closes: an answer would need a handshake, which is the work being refused.
void HttpServer::Impl::refuse(tcp::socket socket) {
  stats->rejected.fetch_add(1, std::memory_order_relaxed);
  if (tls) {
    beast::error_code ec;
    socket.close(ec);
    return;
  }
  static const std::string kBody = json::error_body(
      "the server has too many open connections; retry later or on another replica");
  const std::string response =
      "HTTP/1.1 503 Service Unavailable\r\nServer: forklift\r\n"
      "Content-Type: application/json\r\nRetry-After: 1\r\n"
      "Connection: close\r\nContent-Length: " +
      std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
  beast::error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(asio::buffer(response), ec);
  socket.shutdown(tcp::socket::shutdown_send, ec);
  socket.close(ec);
}

HttpServer::HttpServer(ServerOptions options, const RequestHandler& handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

HttpServer::~HttpServer() {
  drain(std::chrono::milliseconds(0));
}

// TLS 1.2 or newer with OpenSSL's default ciphers, from a PEM certificate chain and key.
Status HttpServer::load_tls() {
  Impl& im = *impl_;
  const std::string& cert = im.options.tls_cert_file;
  const std::string& key = im.options.tls_key_file;
  if (cert.empty() && key.empty()) return Status::Ok();
  if (cert.empty() || key.empty()) {
    return InvalidArgument("TLS needs both a certificate and a private key file");
  }
  im.tls.emplace(ssl::context::tls_server);
  beast::error_code ec;
  im.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                          ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                          ssl::context::no_tlsv1_1 | ssl::context::single_dh_use,
                      ec);
  if (!ec) im.tls->use_certificate_chain_file(cert, ec);
  if (ec) {
    im.tls.reset();
    return InvalidArgument("cannot use the TLS certificate '" + cert + "': " + ec.message());
  }
  im.tls->use_private_key_file(key, ssl::context::pem, ec);
  if (ec) {
    im.tls.reset();
    return InvalidArgument("cannot use the TLS private key '" + key + "': " + ec.message());
  }
  if (SSL_CTX_check_private_key(im.tls->native_handle()) != 1) {
    im.tls.reset();
    return InvalidArgument("the TLS private key '" + key + "' does not match the certificate '" +
                           cert + "'");
  }
  return Status::Ok();
}

std::uint16_t HttpServer::port() const {
  return impl_->bound_port;
}

Status HttpServer::start() {
  Impl& im = *impl_;
  unsigned n = im.options.threads ? im.options.threads : std::thread::hardware_concurrency();
  if (n == 0) n = 1;
  if (Status s = load_tls(); !s.ok()) return s;
  beast::error_code ec;
  const auto address = asio::ip::make_address(im.options.host, ec);
  if (ec) return InvalidArgument("'" + im.options.host + "' is not an IP address");
  std::uint16_t port = im.options.port;
  if (port != 0) {
    // SO_REUSEPORT would let this process silently share a port that another server holds, so
    // first check with a plain bind that the port is free.
    asio::io_context probe_ioc;
    tcp::acceptor probe(probe_ioc);
    probe.open(address.is_v6() ? tcp::v6() : tcp::v4(), ec);
    if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) probe.bind(tcp::endpoint(address, port), ec);
    if (ec) {
      return Unavailable("cannot listen on " + im.options.host + ":" + std::to_string(port) + ": " +
                         ec.message());
    }
  }
  for (unsigned i = 0; i < n; ++i) {
    auto w = std::make_shared<Worker>(im.stats);
    w->acceptor = std::make_unique<tcp::acceptor>(w->ioc);
    const tcp::endpoint endpoint(address, port);
    w->acceptor->open(endpoint.protocol(), ec);
    if (!ec) w->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
      int one = 1;
      if (::setsockopt(w->acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) !=
          0) {
        return Internal("cannot set SO_REUSEPORT on the listening socket");
      }
      w->acceptor->bind(endpoint, ec);
    }
    if (!ec) w->acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Unavailable("cannot listen on " + im.options.host + ":" + std::to_string(port) + ": " +
                         ec.message());
    }
    // With port 0 the first acceptor picks a free port and the others share it.
    port = w->acceptor->local_endpoint().port();
    im.workers.push_back(std::move(w));
  }
  im.bound_port = port;
  for (auto& w : im.workers) {
    w->sweeper = std::make_unique<asio::steady_timer>(w->ioc);
    w->accept_pause = std::make_unique<asio::steady_timer>(w->ioc);
    sweep(*w);
    im.accept(*w);
    Worker* raw = w.get();
    const int nice = im.options.nice;
    w->thread = std::thread([raw, nice] {
      if (nice > 0) lower_this_thread_priority(nice);
      raw->ioc.run();
    });
  }
  return Status::Ok();
}

void HttpServer::drain(std::chrono::milliseconds grace) {
  Impl& im = *impl_;
  for (auto& w : im.workers) {
    Worker* raw = w.get();
    asio::post(raw->ioc, [&im, raw] {
      raw->draining = true;
      beast::error_code ec;
      if (raw->acceptor->is_open()) im.accept_queued(*raw);
      raw->acceptor->close(ec);
      raw->accept_pause->cancel();
      // Copy: closing a session may destroy it, which erases it from the set.
      std::vector<SessionBase*> sessions(raw->sessions.begin(), raw->sessions.end());
      for (SessionBase* s : sessions) s->drain();
      raw->sweeper->cancel();
      if (!raw->sessions.empty()) sweep(*raw);
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (auto& w : im.workers) {
    if (!w->thread.joinable()) continue;
    while (!w->ioc.stopped() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    w->ioc.stop();
    w->thread.join();
  }
  im.workers.clear();
}

}  // namespace forklift
