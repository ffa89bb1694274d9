// Turns JSON features into validated rows: the schema check every request goes through.
#pragma once

#include <simdjson.h>

#include <span>

#include "forklift/status.h"
#include "forklift/types.h"

namespace forklift {

// Parses one JSON object {"feature": value, ...} into `row` (schema order). Every feature must be
// present exactly once with its declared type; unknown names are rejected. Errors name the feature.
Status parse_feature_object(simdjson::ondemand::value object, const Schema& schema,
                            std::span<Value> row);

// Parses a JSON array of feature objects, appending one row to `batch` per element.
Status parse_instances(simdjson::ondemand::value array, Batch& batch);

}  // namespace forklift
