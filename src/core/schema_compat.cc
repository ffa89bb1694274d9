#include "core/schema_compat.h"

namespace forklift {
namespace {

std::string type_name(const FeatureSpec& f) {
  std::string t(to_string(f.type));
  if (f.type == ValueType::kFloatVector) t += "[" + std::to_string(f.length) + "]";
  return t;
}

}  // namespace

std::vector<std::string> schema_breaks(const Schema& current, const Schema& next) {
  std::vector<std::string> breaks;
  for (const FeatureSpec& old_f : current.features) {
    const std::ptrdiff_t i = next.index_of(old_f.name);
    if (i < 0) {
      breaks.push_back("drops feature '" + old_f.name + "'");
      continue;
    }
    const FeatureSpec& new_f = next.features[static_cast<std::size_t>(i)];
    if (new_f.type != old_f.type || new_f.length != old_f.length) {
      breaks.push_back("retypes feature '" + old_f.name + "' (" + type_name(old_f) + " -> " +
                       type_name(new_f) + ")");
    } else if (old_f.allow_missing && !new_f.allow_missing) {
      breaks.push_back("no longer allows feature '" + old_f.name + "' to be missing");
    }
  }
  for (const FeatureSpec& new_f : next.features) {
    if (current.index_of(new_f.name) < 0) {
      breaks.push_back("requires new feature '" + new_f.name + "'");
    }
  }
  return breaks;
}

}  // namespace forklift
