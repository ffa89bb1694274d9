// A deployment: which versions of a model id take traffic, and in what proportion.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/status.h"

namespace forklift {

struct Route {
  std::int64_t version = 0;
  std::uint32_t weight = 0;  // relative; routes need not sum to 100

  bool operator==(const Route&) const = default;
};

struct Deployment {
  // Empty: requests without a version get the newest serving version (the version policy).
  std::vector<Route> routes;

  bool empty() const { return routes.empty(); }
  bool operator==(const Deployment&) const = default;
  // "2" for one route, "1:90,2:10" for a split, "policy" when empty.
  std::string describe() const;
  // Checks weights and duplicates (not whether the versions serve: the registry does that).
  Status validate() const;
};

// The version a request goes to. With an experiment key the choice is sticky: the same key always
// lands on the same version for a given split, in every replica and across restarts (FNV-1a, not
// std::hash). Without one, requests are spread by weight at random. `deployment` must not be empty.
std::int64_t pick_version(const Deployment& deployment, std::string_view experiment_key);

// JSON: {"routes": [{"version": 1, "weight": 90}, ...]}
void append_deployment_json(std::string& out, const Deployment& deployment);
Result<Deployment> parse_deployment_json(std::string_view json);

}  // namespace forklift
