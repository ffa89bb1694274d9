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

// A version that receives a sampled copy of the traffic, off the hot path; its answers are
// compared with the primary's and never returned.
struct Shadow {
  std::int64_t version = 0;
  double sample_rate = 1.0;       // fraction of requests copied, (0, 1]
  double agree_tolerance = 0.01;  // outputs "agree" when the relative difference is at most this

  bool operator==(const Shadow&) const = default;
};

struct Deployment {
  // Empty: requests without a version get the newest serving version (the version policy).
  std::vector<Route> routes;
  std::vector<Shadow> shadows;

  // Traffic split over `routes`, no shadows.
  static Deployment of(std::vector<Route> split) {
    Deployment d;
    d.routes = std::move(split);
    return d;
  }

  // Whether routing is left to the version policy (shadows may still be set).
  bool empty() const { return routes.empty(); }
  bool operator==(const Deployment&) const = default;
  // "2" for one route, "1:90,2:10" for a split, "policy" when empty; shadows as " shadow 3@10%".
  std::string describe() const;
  // Checks weights, rates and duplicates (not whether the versions serve: the registry does).
  Status validate() const;
};

// The version a request goes to. With an experiment key the choice is sticky: the same key always
// lands on the same version for a given split, in every replica and across restarts (FNV-1a, not
// std::hash). Without one, requests are spread by weight at random. `deployment` must not be empty.
std::int64_t pick_version(const Deployment& deployment, std::string_view experiment_key);

// JSON: {"routes": [{"version": 1, "weight": 90}, ...],
//        "shadows": [{"version": 3, "sample_rate": 0.1, "agree_tolerance": 0.01}]}
void append_deployment_json(std::string& out, const Deployment& deployment);
Result<Deployment> parse_deployment_json(std::string_view json);

}  // namespace forklift
