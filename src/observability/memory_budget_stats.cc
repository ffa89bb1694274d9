#include "observability/memory_budget_stats.h"

namespace forklift {

void MemoryBudgetStats::render(std::string& out) const {
  auto line = [&out](std::string_view name, std::uint64_t value) {
    append_sample(out, name, "", value);
  };
  out +=
      "# HELP forklift_memory_budget_bytes The memory budget for loaded versions "
      "(--memory-budget-mb).\n"
      "# TYPE forklift_memory_budget_bytes gauge\n";
  line("forklift_memory_budget_bytes", budget_bytes);
  out +=
      "# HELP forklift_memory_budget_used_bytes Measured size of the versions loaded now.\n"
      "# TYPE forklift_memory_budget_used_bytes gauge\n";
  line("forklift_memory_budget_used_bytes", used_bytes.load());
  out +=
      "# HELP forklift_model_cold_loads_total Versions loaded because a request asked for them.\n"
      "# TYPE forklift_model_cold_loads_total counter\n";
  line("forklift_model_cold_loads_total", cold_loads.load());
  out +=
      "# HELP forklift_model_evictions_total Versions unloaded to stay within the memory budget.\n"
      "# TYPE forklift_model_evictions_total counter\n";
  line("forklift_model_evictions_total", evictions.load());
  out +=
      "# HELP forklift_cold_start_requests_total Requests that found their version unloaded and "
      "waited for its load, by result (served; timeout: 503 after --cold-start-wait-ms; "
      "refused: 503 at once, too many waiting).\n"
      "# TYPE forklift_cold_start_requests_total counter\n";
  const std::uint64_t timeouts = cold_timeouts.load();
  const std::uint64_t refused = cold_refused.load();
  const std::uint64_t all = cold_requests.load();
  out +=
      "forklift_cold_start_requests_total{result=\"timeout\"} " + std::to_string(timeouts) + "\n";
  out += "forklift_cold_start_requests_total{result=\"refused\"} " + std::to_string(refused) + "\n";
  out += "forklift_cold_start_requests_total{result=\"waited\"} " +
         std::to_string(all >= timeouts + refused ? all - timeouts - refused : 0) + "\n";
  out +=
      "# HELP forklift_cold_start_seconds How long requests waited for their version to load.\n"
      "# TYPE forklift_cold_start_seconds histogram\n";
  cold_start_seconds.render(out, "forklift_cold_start_seconds", "");
}

}  // namespace forklift
