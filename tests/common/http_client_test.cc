#include "common/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

namespace forklift {
namespace {

// A server on 127.0.0.1 that answers each connection's first request with `answer` (or never
// answers, when `answer` is empty) and remembers what it was sent.
class CannedServer {
 public:
  explicit CannedServer(std::string answer) : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 4), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~CannedServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url(const std::string& path = "/x") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string received() {
    std::lock_guard lock(mu_);
    return received_;
  }

 private:
  void serve() {
    while (!stop_) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const auto n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        request.append(buf, static_cast<std::size_t>(n));
      }
      {
        std::lock_guard lock(mu_);
        received_ += request;
      }
      if (answer_.empty()) {
        // Never answers: waits until the client gives up and closes.
        while (::recv(c, buf, sizeof buf, 0) > 0) {
        }
      } else {
        (void)::send(c, answer_.data(), answer_.size(), MSG_NOSIGNAL);
      }
      ::close(c);
    }
  }

  std::string answer_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::string received_;
  std::thread thread_;
};

std::string answer(int status, const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n" +
         extra + "\r\n" + body;
}

TEST(HttpClient, ReadsStatusHeadersAndBody) {
  CannedServer server(answer(200, "hello", "ETag: \"abc\"\r\n"));
  HttpClient client;
  auto a = client.call({.url = server.url(), .headers = {{"X-Test", "1"}}});
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->body, "hello");
  EXPECT_EQ(a->header("etag"), "\"abc\"");
  EXPECT_NE(server.received().find("X-Test: 1"), std::string::npos);
}

TEST(HttpClient, SendsTheBodyWithTheMethod) {
  CannedServer server(answer(201, ""));
  HttpClient client;
  auto a = client.call({.method = "PUT", .url = server.url("/k"), .body = "payload"});
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->status, 201);
  EXPECT_TRUE(server.received().starts_with("PUT /k HTTP/1.1"));
  EXPECT_EQ(server.received().find("Expect:"), std::string::npos);
}

TEST(HttpClient, ABodyOverTheBoundFailsTheCall) {
  CannedServer server(answer(200, std::string(1000, 'x')));
  HttpClient client;
  auto a = client.call({.url = server.url(), .max_body_bytes = 999});
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(a.status().message().find("larger than 999 bytes"), std::string::npos);
}

TEST(HttpClient, ASinkGetsASuccessfulBodyAndCanStopIt) {
  CannedServer server(answer(200, std::string(5000, 'y')));
  HttpClient client;
  std::size_t got = 0;
  auto a = client.call({.url = server.url(), .max_body_bytes = 10, .sink = [&](std::string_view p) {
                          got += p.size();
                          return Status::Ok();
                        }});
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(got, 5000u);
  EXPECT_TRUE(a->body.empty());

  auto stopped = client.call(
      {.url = server.url(), .sink = [](std::string_view) { return FailedPrecondition("enough"); }});
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.status().message(), "enough");
}

TEST(HttpClient, AnErrorAnswersBodyIsNotGivenToTheSink) {
  CannedServer server(answer(404, "<Error>NoSuchKey</Error>"));
  HttpClient client;
  bool sunk = false;
  auto a = client.call({.url = server.url(), .sink = [&](std::string_view) {
                          sunk = true;
                          return Status::Ok();
                        }});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->status, 404);
  EXPECT_FALSE(sunk);
  EXPECT_EQ(a->body, "<Error>NoSuchKey</Error>");
}

TEST(HttpClient, RefusesOtherSchemesAndReportsUnreachableServers) {
  HttpClient client;
  auto file = client.call({.url = "file:///etc/passwd"});
  EXPECT_EQ(file.status().code(), StatusCode::kInvalidArgument);
  auto refused = client.call({.url = "http://127.0.0.1:1/", .timeout = std::chrono::seconds(5)});
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
}

TEST(HttpClient, AServerThatNeverAnswersIsADeadlineNotAHang) {
  CannedServer server("");
  HttpClient client;
  auto a = client.call({.url = server.url(), .timeout = std::chrono::milliseconds(300)});
  EXPECT_EQ(a.status().code(), StatusCode::kDeadlineExceeded);
}

TEST(HttpClient, AStalledTransferFailsWithoutAWholeCallLimit) {
  CannedServer server("");
  HttpClient client;
  auto a = client.call({.url = server.url(),
                        .timeout = std::chrono::milliseconds(0),
                        .stall_timeout = std::chrono::milliseconds(1000)});
  EXPECT_EQ(a.status().code(), StatusCode::kDeadlineExceeded);
}

TEST(UriEncode, KeepsUnreservedCharactersAndOptionallySlashes) {
  EXPECT_EQ(uri_encode("models/eta v1/a+b~_.-", true), "models/eta%20v1/a%2Bb~_.-");
  EXPECT_EQ(uri_encode("a/b", false), "a%2Fb");
  EXPECT_EQ(uri_encode("\xc3\xa9", false), "%C3%A9");
}

}  // namespace
}  // namespace forklift
