// What a version's predictions mean, so that labels can score them: model.yaml's `quality:`.
//
//   quality: {task: regression}                            MAE and bias
//   quality: {task: binary_classification, threshold: 0.5}  log loss, accuracy, AUC
//
// Only versions that declare it have their predictions kept for joining with feedback labels.
#pragma once

#include <string_view>

namespace forklift {

struct QualitySpec {
  enum class Task { kNone, kRegression, kBinaryClassification };
  Task task = Task::kNone;
  double threshold = 0.5;  // binary: a score at or above it predicts 1

  bool enabled() const { return task != Task::kNone; }
  bool operator==(const QualitySpec&) const = default;
};

inline std::string_view task_name(QualitySpec::Task task) {
  switch (task) {
    case QualitySpec::Task::kRegression:
      return "regression";
    case QualitySpec::Task::kBinaryClassification:
      return "binary_classification";
    case QualitySpec::Task::kNone:
      break;
  }
  return "none";
}

}  // namespace forklift
