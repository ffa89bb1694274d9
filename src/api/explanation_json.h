// Explanations in answers: `"explain": true` on POST /infer and the v2 `explain` parameter ask for
// each row's feature contributions (Model::explain) beside its output.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/version_loader.h"
#include "forklift/runtime.h"

namespace forklift {

// Rows one request may ask explanations for: each costs a couple of hundred predictions (about
// 0.6 ms on eta, 3 ms on a 500-tree depth-8 model: docs/explanation/performance.md), computed on
// the serving thread, which meanwhile answers no one else. The runtime bounds the work too
// (tree_shap.h: kMaxExplainSteps).
inline constexpr std::size_t kMaxExplainedRows = 10;

// The name of each input column: a feature's name, or name[i] for element i of a float_vector.
std::vector<std::string> column_names(const Schema& schema);

// A request's explanations, computed by the routed version before its prediction: a refusal
// (400) then costs no prediction, and the runtime bounds the work before doing any. A version
// not in memory (a memory budget's placeholder) cannot be asked yet: `pending`, and the answer,
// once the prediction has loaded it, is 503 asking for a retry. More than kMaxExplainedRows rows
// is InvalidArgument.
struct Explaining {
  Model::Explanation explanation;
  std::vector<std::string> names;  // column_names()
  bool pending = false;
};
Status explain_before_predicting(const LoadedModel& model, const Batch& batch, Explaining& out);
// The answer when `pending`: 503, retry.
Status retry_for_explanation(const LoadedModel& model);

// The explanations of `batch`'s rows by `model`, or why there are none: InvalidArgument when its
// runtime does not explain them (Model::explain's FailedPrecondition), Unavailable when the
// version is not in memory (a memory budget's placeholder), Internal when explaining failed.
Status explain_rows(const LoadedModel& model, const Batch& batch, Model::Explanation& out);

// {"bias": b, "contributions": {"name": c, ...}} for `row`; with several output groups, each
// value is a list with one entry per group.
void append_explanation(std::string& out, const Model::Explanation& explanation, std::size_t row,
                        const std::vector<std::string>& names);

}  // namespace forklift
