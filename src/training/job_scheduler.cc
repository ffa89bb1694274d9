#include "training/job_scheduler.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "common/wall_clock.h"
#include "core/repository.h"
#include "observability/log.h"
#include "training/staged_version.h"

namespace forklift::training {
namespace {

constexpr double kHourMs = 3600.0 * 1000;
constexpr std::chrono::milliseconds kMinLease{10 * 60 * 1000};

// When the newest version was written: its lineage.json (a trained one), else its model.yaml;
// 0 when the model has no version.
std::int64_t newest_version_ms(const std::filesystem::path& model_dir) {
  const std::int64_t newest = newest_version(model_dir);
  if (newest == 0) return 0;
  const std::filesystem::path dir = model_dir / std::to_string(newest);
  struct stat st {};
  if (::stat((dir / "lineage.json").c_str(), &st) != 0 &&
      ::stat((dir / "model.yaml").c_str(), &st) != 0) {
    return 0;
  }
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

}  // namespace

JobScheduler::JobScheduler(JobQueue& jobs, const ModelRegistry& registry, StateStore& store,
                           const FeedbackService* feedback, std::filesystem::path repository)
    : jobs_(jobs),
      registry_(registry),
      store_(store),
      feedback_(feedback),
      repository_(std::move(repository)) {}

double JobScheduler::max_drift(const std::string& model_id, std::uint64_t min_rows,
                               std::int64_t now_ms) const {
  const auto snapshot = registry_.snapshot();
  const auto m = snapshot->models.find(model_id);
  if (m == snapshot->models.end()) return 0;
  double worst = 0;
  for (const auto& [version, loaded] : m->second.serving) {
    if (!loaded->drift) continue;
    const DriftReading reading = loaded->drift->read(now_ms);
    if (reading.rows < min_rows) continue;
    for (const auto& f : reading.features) worst = std::max(worst, f.psi);
  }
  return worst;
}

std::string JobScheduler::due(const std::string& model_id, const ScheduleSpec& schedule, Seen& seen,
                              std::int64_t now_ms) const {
  const double since_attempt = static_cast<double>(now_ms - seen.last_attempt_ms);
  if (schedule.every_hours > 0) {
    const std::int64_t newest = newest_version_ms(repository_ / model_id);
    const double period = schedule.every_hours * kHourMs;
    if (static_cast<double>(now_ms - newest) >= period && since_attempt >= period) {
      return "schedule";
    }
  }
  const double between = schedule.min_hours_between * kHourMs;
  if (since_attempt < between) return "";
  if (schedule.after_labels > 0 && feedback_ != nullptr) {
    const std::uint64_t labels = feedback_->labels_joined(model_id);
    if (!seen.labels_known) {
      seen.labels_at_last = labels;  // counts start with this process
      seen.labels_known = true;
    }
    if (labels - seen.labels_at_last >= schedule.after_labels) return "labels";
  }
  if (schedule.on_drift_psi > 0 &&
      max_drift(model_id, schedule.drift_min_rows, now_ms) >= schedule.on_drift_psi) {
    return "drift";
  }
  return "";
}

void JobScheduler::snapshot_learners(std::int64_t now_ms) {
  const auto snapshot = registry_.snapshot();
  for (const auto& [model_id, model] : snapshot->models) {
    std::shared_ptr<const LoadedModel> newest;
    for (const auto& [version, loaded] : model.serving) {
      if (loaded->learner != nullptr) newest = loaded;
    }
    if (!newest) continue;
    Learning& l = learning_[{model_id, newest->version}];
    if (l.last_ms == 0) l.last_ms = now_ms;
    const auto option = [&](const char* key, double fallback) {
      auto it = newest->manifest.runtime_options.find(key);
      if (it == newest->manifest.runtime_options.end()) return fallback;
      char* end = nullptr;
      const double v = std::strtod(it->second.c_str(), &end);
      // At most 1e9 (updates, or minutes: 1,900 years), so the lease's milliseconds stay in an
      // int64; "inf", "nan" or larger fall back as a malformed value does.
      return end != it->second.c_str() && *end == '\0' && v >= 0 && v <= 1e9 ? v : fallback;
    };
    const double every_updates = option("snapshot_every_updates", 10000);
    const double every_minutes = option("snapshot_every_minutes", 0);
    const std::uint64_t updates = newest->learner->updates();
    if (updates <= l.updates_at_last) continue;
    std::string trigger;
    if (every_updates > 0 && static_cast<double>(updates - l.updates_at_last) >= every_updates) {
      trigger = "updates";
    } else if (every_minutes > 0 &&
               static_cast<double>(now_ms - l.last_ms) >= every_minutes * 60 * 1000) {
      trigger = "schedule";
    }
    if (trigger.empty() || jobs_.active(model_id)) continue;
    l.updates_at_last = updates;
    l.last_ms = now_ms;
    // Each replica learns from its own labels; one of them snapshots per period.
    const auto ttl = std::chrono::milliseconds(
        std::max<std::int64_t>(60'000, static_cast<std::int64_t>(every_minutes * 60'000)));
    auto held = store_.hold_lease("snapshot:" + model_id, ttl);
    if (!held.ok() || !*held) continue;
    auto job = jobs_.submit_snapshot(newest, "forklift-scheduler", trigger);
    if (!job.ok()) {
      log::warn("training_job_not_queued",
                {{"model_id", model_id}, {"reason", job.status().message()}});
    }
  }
}

void JobScheduler::tick(std::int64_t now_ms) {
  snapshot_learners(now_ms);
  auto models = scan_repository(repository_);
  if (!models.ok()) return;
  for (const ModelDirectory& model : *models) {
    std::error_code ec;
    if (!std::filesystem::exists(model.path / "train.yaml", ec)) continue;
    Seen& seen = seen_[model.model_id];
    auto spec = read_train_spec(repository_, model.path);
    if (!spec.ok()) {
      if (spec.status().message() != seen.spec_error) {
        log::warn("train_spec_invalid",
                  {{"model_id", model.model_id}, {"reason", spec.status().message()}});
        seen.spec_error = spec.status().message();
      }
      continue;
    }
    seen.spec_error.clear();
    if (!spec->schedule.any() || jobs_.active(model.model_id)) continue;
    const std::string trigger = due(model.model_id, spec->schedule, seen, now_ms);
    if (trigger.empty()) continue;
    seen.last_attempt_ms = now_ms;
    if (feedback_ != nullptr) seen.labels_at_last = feedback_->labels_joined(model.model_id);
    // The lease lasts the period, and at least kMinLease: the replica that holds it queues the
    // model's jobs (renewing it each time), the others find it held and leave them. A job that
    // runs longer than a short period can then not overlap with another replica's next one
    // (found in CI: two jobs trained from one parent); a replica that dies hands the model over
    // within kMinLease.
    const double period_hours =
        trigger == "schedule" ? spec->schedule.every_hours : spec->schedule.min_hours_between;
    const auto ttl = std::max(
        kMinLease, std::chrono::milliseconds(static_cast<std::int64_t>(period_hours * kHourMs)));
    auto held = store_.hold_lease("train:" + model.model_id, ttl);
    if (!held.ok()) {
      log::warn("training_lease_unavailable",
                {{"model_id", model.model_id}, {"reason", held.status().message()}});
      seen.last_attempt_ms = 0;  // try again next tick
      continue;
    }
    if (!*held) continue;  // another replica queues it
    auto job = jobs_.submit(model.model_id, 0, "forklift-scheduler", trigger);
    if (!job.ok()) {
      log::warn("training_job_not_queued",
                {{"model_id", model.model_id}, {"reason", job.status().message()}});
    }
  }
}

std::unique_ptr<PeriodicThread> start_job_scheduler(JobScheduler& scheduler,
                                                    std::chrono::milliseconds period) {
  return std::make_unique<PeriodicThread>(period, [&scheduler] { scheduler.tick(now_unix_ms()); });
}

}  // namespace forklift::training
