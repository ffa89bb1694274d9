#include "api/explanation_json.h"

#include <exception>

#include "common/json_writer.h"

namespace forklift {

std::vector<std::string> column_names(const Schema& schema) {
  std::vector<std::string> names;
  for (const FeatureSpec& f : schema.features) {
    if (f.type != ValueType::kFloatVector) {
      names.push_back(f.name);
      continue;
    }
    for (std::size_t i = 0; i < f.length; ++i)
      names.push_back(f.name + "[" + std::to_string(i) + "]");
  }
  return names;
}

Status retry_for_explanation(const LoadedModel& model) {
  return Unavailable("version " + std::to_string(model.version) + " of model '" + model.model_id +
                     "' was not in memory: it has just been loaded for this request; retry to "
                     "get the explanation");
}

Status explain_rows(const LoadedModel& model, const Batch& batch, Model::Explanation& out) {
  const std::string who =
      "version " + std::to_string(model.version) + " of model '" + model.model_id + "'";
  if (model.runtime_model == nullptr) return retry_for_explanation(model);
  try {
    if (Status s = model.runtime_model->explain(batch, out); !s.ok()) {
      // FailedPrecondition: the request asks what this version does not offer, the client's to
      // change (400). Anything else is the runtime's own failure (500).
      if (s.code() == StatusCode::kFailedPrecondition) {
        return InvalidArgument(who + " cannot explain its predictions: " + s.message());
      }
      return Internal(who + ": explaining failed: " + s.message());
    }
  } catch (const std::exception& e) {
    return Internal(who + ": explaining failed: " + e.what());
  }
  const std::size_t columns = column_names(*model.schema).size();
  if (out.columns != columns || out.groups == 0 ||
      out.values.size() != batch.rows() * out.groups * (columns + 1)) {
    return Internal(who + ": its runtime's explanation has " + std::to_string(out.values.size()) +
                    " values for " + std::to_string(out.columns) + " columns and " +
                    std::to_string(out.groups) + " outputs, where the schema has " +
                    std::to_string(columns) + " columns");
  }
  return Status::Ok();
}

Status explain_before_predicting(const LoadedModel& model, const Batch& batch, Explaining& out) {
  if (batch.rows() > kMaxExplainedRows) {
    return InvalidArgument("explain takes at most " + std::to_string(kMaxExplainedRows) +
                           " rows per request, not " + std::to_string(batch.rows()));
  }
  if (model.runtime_model == nullptr) {
    out.pending = true;
    return Status::Ok();
  }
  if (Status s = explain_rows(model, batch, out.explanation); !s.ok()) return s;
  out.names = column_names(*model.schema);
  return Status::Ok();
}

void append_explanation(std::string& out, const Model::Explanation& e, std::size_t row,
                        const std::vector<std::string>& names) {
  const std::size_t width = e.columns + 1;
  const double* values = e.values.data() + row * e.groups * width;
  const auto append_column = [&](std::size_t c) {
    if (e.groups == 1) return json::append_double(out, values[c]);
    out.push_back('[');
    for (std::size_t g = 0; g < e.groups; ++g) {
      if (g) out.push_back(',');
      json::append_double(out, values[g * width + c]);
    }
    out.push_back(']');
  };
  out += "{\"bias\":";
  append_column(e.columns);
  out += ",\"contributions\":{";
  for (std::size_t c = 0; c < e.columns; ++c) {
    if (c) out.push_back(',');
    json::append_string(out, names[c]);
    out.push_back(':');
    append_column(c);
  }
  out += "}}";
}

}  // namespace forklift
