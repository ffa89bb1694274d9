// An example of a team's own runtime: a rule-based surge-pricing model written as the two
// functions forklift asks for, `load` and `predict`.
//
// The artifact (rules.conf) holds `key = value` lines:
//   base, slope, cap        multiplier = clamp(base + slope * (demand/supply - 1), 1, cap)
//   rain_bonus              added when it rains
//   peak_bonus, peak_hours  added in the listed hours (comma-separated, 0-23)
//   city_caps               per-city caps that replace `cap`, e.g. "sf:2.5,nyc:3.5"
#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "forklift/runtime.h"

namespace {

struct SurgeRules {
  double base = 1.0;
  double slope = 0.5;
  double cap = 3.0;
  double rain_bonus = 0.0;
  double peak_bonus = 0.0;
  std::set<long> peak_hours;
  std::map<std::string, double, std::less<>> city_caps;
};

forklift::Result<SurgeRules> load(const forklift::LoadContext& ctx) {
  std::ifstream in(ctx.artifact);
  if (!in) return forklift::NotFound(ctx.artifact.string() + ": cannot be read");
  SurgeRules rules;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) {
      return forklift::InvalidArgument(ctx.artifact.string() + ":" + std::to_string(n) +
                                       ": expected key = value");
    }
    std::string key = line.substr(0, eq);
    key.erase(std::remove(key.begin(), key.end(), ' '), key.end());
    const std::string value = line.substr(eq + 1);
    try {
      if (key == "base")
        rules.base = std::stod(value);
      else if (key == "slope")
        rules.slope = std::stod(value);
      else if (key == "cap")
        rules.cap = std::stod(value);
      else if (key == "rain_bonus")
        rules.rain_bonus = std::stod(value);
      else if (key == "peak_bonus")
        rules.peak_bonus = std::stod(value);
      else if (key == "peak_hours") {
        std::stringstream hours(value);
        for (std::string h; std::getline(hours, h, ',');) rules.peak_hours.insert(std::stol(h));
      } else if (key == "city_caps") {
        std::stringstream caps(value);
        for (std::string item; std::getline(caps, item, ',');) {
          const auto colon = item.find(':');
          if (colon == std::string::npos) throw std::invalid_argument("city:cap");
          std::string city = item.substr(0, colon);
          city.erase(std::remove(city.begin(), city.end(), ' '), city.end());
          rules.city_caps[city] = std::stod(item.substr(colon + 1));
        }
      } else {
        return forklift::InvalidArgument(ctx.artifact.string() + ":" + std::to_string(n) +
                                         ": unknown key '" + key + "'");
      }
    } catch (const std::exception&) {
      return forklift::InvalidArgument(ctx.artifact.string() + ":" + std::to_string(n) + ": '" +
                                       key + "' needs a number");
    }
  }
  if (rules.cap < 1.0) return forklift::InvalidArgument("cap must be at least 1");
  return rules;
}

forklift::Value predict(const SurgeRules& rules, const forklift::RowView& row) {
  const double demand = row.number("open_requests");
  const double supply = std::max(1.0, row.number("available_drivers"));
  double multiplier = rules.base + rules.slope * (demand / supply - 1.0);
  if (std::get<bool>(row.at("is_raining"))) multiplier += rules.rain_bonus;
  if (rules.peak_hours.contains(std::get<std::int64_t>(row.at("hour_of_day")))) {
    multiplier += rules.peak_bonus;
  }
  const auto city_cap = rules.city_caps.find(std::get<std::string>(row.at("city")));
  const double cap = city_cap == rules.city_caps.end() ? rules.cap : city_cap->second;
  return std::clamp(multiplier, 1.0, std::max(1.0, cap));
}

}  // namespace

FORKLIFT_REGISTER_RUNTIME("surge", load, predict);
