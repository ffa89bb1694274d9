// The HTTP transport with a handler that answers later from another thread, as the batching
// queue does: the answer reaches the client, and the server can drain and be destroyed while the
// other thread still holds (or has not yet used) the function that finishes the answer. These
// lifetimes are what the sanitizer builds check; in a plain build a mistake here crashes.
#include "server/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "observability/log.h"

namespace forklift {
namespace {

using namespace std::chrono_literals;

// Defers every request and hands the function that finishes it to the test.
class DeferringHandler final : public RequestHandler {
 public:
  void handle(const HttpRequest& req, HttpResponse&) const override {
    ResumeResponse resume = req.deferral->defer(ResponseDeferral::kReadTimeout);
    std::lock_guard lock(mu_);
    pending_ = std::move(resume);
    cv_.notify_all();
  }

  // Waits until a request has been deferred and takes its function.
  ResumeResponse take() const {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return pending_.has_value(); });
    ResumeResponse r = std::move(*pending_);
    pending_.reset();
    return r;
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::optional<ResumeResponse> pending_;
};

// Sends one GET over a fresh connection and returns everything the server wrote until it closed
// (or "" if it could not connect).
std::string get_until_closed(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    if (::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, buf + n);
    }
  }
  ::close(fd);
  return out;
}

ServerOptions local_options() {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.threads = 1;
  return o;
}

class DeferredAnswerTest : public ::testing::Test {
 protected:
  void SetUp() override { log::set_min_level(log::Level::kError); }
  void TearDown() override { log::set_min_level(log::Level::kInfo); }
  DeferringHandler handler;
};

TEST_F(DeferredAnswerTest, AnsweredFromAnotherThread) {
  HttpServer server(local_options(), handler);
  ASSERT_TRUE(server.start().ok());
  auto reply = std::async(std::launch::async, get_until_closed, server.port());
  std::thread([resume = handler.take()] {
    resume([](HttpResponse& res) { res.json(201, R"({"later":true})"); });
  }).join();
  const std::string text = reply.get();
  EXPECT_EQ(text.rfind("HTTP/1.1 201", 0), 0u) << text;
  EXPECT_NE(text.find(R"({"later":true})"), std::string::npos) << text;
}

// The other thread answers during the drain but lets go of its function only after the server
// is gone: the last reference to the connection must not be dropped from that thread.
TEST_F(DeferredAnswerTest, FunctionOutlivesTheServerAfterAnswering) {
  std::optional<HttpServer> server(std::in_place, local_options(), handler);
  ASSERT_TRUE(server->start().ok());
  auto reply = std::async(std::launch::async, get_until_closed, server->port());
  ResumeResponse resume = handler.take();
  std::promise<void> server_gone;
  std::thread other([&resume, gone = server_gone.get_future()] {
    std::this_thread::sleep_for(100ms);  // the drain is waiting for this answer by now
    resume([](HttpResponse& res) { res.json(200, "{}"); });
    gone.wait();
    resume = nullptr;
  });
  server->drain(10s);  // returns once the answer is written and the connection closed
  server.reset();
  server_gone.set_value();
  other.join();
  const std::string text = reply.get();
  EXPECT_EQ(text.rfind("HTTP/1.1 200", 0), 0u) << text;
  EXPECT_NE(text.find("Connection: close"), std::string::npos) << text;
}

// The drain deadline passes with the answer still pending; the function is used and dropped
// after the server is destroyed. Nothing is sent (the loop is stopped) and nothing breaks.
TEST_F(DeferredAnswerTest, FunctionUsedAfterTheServerGaveUp) {
  std::optional<HttpServer> server(std::in_place, local_options(), handler);
  ASSERT_TRUE(server->start().ok());
  auto reply = std::async(std::launch::async, get_until_closed, server->port());
  ResumeResponse resume = handler.take();
  server->drain(200ms);
  server.reset();
  bool filled = false;
  std::thread([&] {
    resume([&filled](HttpResponse&) { filled = true; });
    resume = nullptr;
  }).join();
  EXPECT_FALSE(filled);
  EXPECT_EQ(reply.get(), "");  // closed without an answer when the connection was destroyed
}

// A function dropped without being called (a bug in the code that deferred): the client is told.
TEST_F(DeferredAnswerTest, FunctionDroppedWithoutAnswering) {
  std::optional<HttpServer> server(std::in_place, local_options(), handler);
  ASSERT_TRUE(server->start().ok());
  auto reply = std::async(std::launch::async, get_until_closed, server->port());
  std::thread([resume = handler.take()]() mutable { resume = nullptr; }).join();
  const std::string text = reply.get();
  EXPECT_EQ(text.rfind("HTTP/1.1 500", 0), 0u) << text;
  EXPECT_NE(text.find("dropped before it was answered"), std::string::npos) << text;
  server->drain(10s);
  server.reset();
}

}  // namespace
}  // namespace forklift
