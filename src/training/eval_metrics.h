// How well predictions match labels, on a job's held-out rows: the numbers a new version is
// judged by against its parent (docs/reference/train-yaml.md, `evaluation`).
#pragma once

#include <string>
#include <vector>

#include "forklift/status.h"

namespace forklift::training {

// `metric`: rmse, mae (regression); logloss, auc, accuracy (binary classification, predictions
// are probabilities of the positive class, labels 0 or 1; accuracy at `threshold`). AUC ranks
// exactly (ties share their rank). Errors: empty or unequal inputs, a classification metric
// with labels other than 0 and 1, or AUC with one class only.
Result<double> evaluate(const std::string& metric, const std::vector<double>& predictions,
                        const std::vector<double>& labels, double threshold = 0.5);

}  // namespace forklift::training
