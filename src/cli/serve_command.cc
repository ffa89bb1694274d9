#include "cli/serve_command.h"

#include <condition_variable>
#include <csignal>
#include <ctime>
#include <mutex>
#include <thread>

#include "api/router.h"
#include "core/model_registry.h"
#include "observability/log.h"
#include "runtimes/runtime_registry.h"

namespace forklift {
namespace {

// Loads the repository once, then rescans it every `poll_seconds` until stopped.
class RepositoryLoader {
 public:
  RepositoryLoader(ModelRegistry& registry, double poll_seconds)
      : registry_(registry), poll_seconds_(poll_seconds), thread_([this] { run(); }) {}
  ~RepositoryLoader() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void run() {
    registry_.sync();
    const auto snap = registry_.snapshot();
    log::info("repository_loaded", {{"models", static_cast<std::int64_t>(snap->models.size())},
                                    {"ready", snap->ready()}});
    if (poll_seconds_ <= 0) return;
    std::unique_lock lock(mu_);
    while (
        !cv_.wait_for(lock, std::chrono::duration<double>(poll_seconds_), [&] { return stop_; })) {
      lock.unlock();
      registry_.sync();
      lock.lock();
    }
  }

  ModelRegistry& registry_;
  double poll_seconds_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace

int run_serve(const ServeOptions& options) {
  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  register_builtin_runtimes();
  MetricsRegistry metrics;
  ModelRegistry registry(options.model_repository, metrics);
  Router router(ApiContext{&registry, &metrics, options.log_requests});
  HttpServer server(options.server, router);
  if (Status s = server.start(); !s.ok()) {
    log::error("listen_failed", {{"reason", s.message()}});
    return 1;
  }
  log::info("listening", {{"host", options.server.host},
                          {"port", static_cast<std::int64_t>(server.port())},
                          {"model_repository", options.model_repository}});
  {
    RepositoryLoader loader(registry, options.poll_seconds);
    int sig = 0;
    sigwait(&signals, &sig);
    log::info("draining", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    server.drain(std::chrono::milliseconds(static_cast<long>(options.drain_seconds * 1000)));
  }
  log::info("stopped");
  return 0;
}

}  // namespace forklift
