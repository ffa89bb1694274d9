#include "training/job_queue.h"

#include "common/file_util.h"
#include "common/thread_priority.h"
#include "core/control_state.h"
#include "core/repository.h"
#include "observability/log.h"
#include "training/job_id.h"
#include "training/online_snapshot.h"

namespace forklift::training {
namespace {

// The lowest priority there is: a training job must never take a core from serving.
constexpr int kJobNice = 19;

JobState state_of(JobResult result) {
  switch (result) {
    case JobResult::kPublished:
      return JobState::kPublished;
    case JobResult::kRefused:
      return JobState::kRefused;
    case JobResult::kCancelled:
      return JobState::kCancelled;
    case JobResult::kFailed:
      return JobState::kFailed;
  }
  return JobState::kFailed;
}

bool ended(JobState s) {
  return s != JobState::kQueued && s != JobState::kRunning;
}

}  // namespace

std::string_view to_string(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kPublished:
      return "published";
    case JobState::kRefused:
      return "refused";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "failed";
}

JobQueue::JobQueue(JobQueueOptions options) : options_(std::move(options)) {
  for (std::size_t i = 0; i < std::max<std::size_t>(1, options_.workers); ++i) {
    workers_.emplace_back([this] { work(); });
  }
}

JobQueue::~JobQueue() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    for (auto& [id, job] : jobs_) job->cancel.store(true);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

Result<JobRecord> JobQueue::submit(const std::string& model_id, std::int64_t parent,
                                   const std::string& actor, const std::string& trigger) {
  if (!is_valid_model_id(model_id)) return NotFound("unknown model '" + model_id + "'");
  std::error_code ec;
  const std::filesystem::path dir = options_.repository / model_id;
  if (std::filesystem::is_symlink(dir, ec) || !real_path_within(options_.repository, dir).ok() ||
      !std::filesystem::is_regular_file(dir / "train.yaml", ec)) {
    return NotFound("model '" + model_id + "' has no train.yaml in the model repository");
  }
  auto job = std::make_shared<Job>();
  job->record.model_id = model_id;
  job->record.actor = actor;
  job->record.trigger = trigger;
  job->record.parent = parent;  // 0: production, resolved when the job starts
  return enqueue(std::move(job));
}

Result<JobRecord> JobQueue::submit_snapshot(std::shared_ptr<const LoadedModel> version,
                                            const std::string& actor, const std::string& trigger) {
  if (!version || version->learner == nullptr) {
    return FailedPrecondition(
        "only a version that learns online (runtime: online) has a "
        "snapshot to take");
  }
  if (version->learner->updates() == 0) {
    return FailedPrecondition("version " + std::to_string(version->version) + " of " +
                              version->model_id +
                              " has learned nothing since it was loaded: a snapshot would be a "
                              "copy of it");
  }
  auto job = std::make_shared<Job>();
  job->record.model_id = version->model_id;
  job->record.actor = actor;
  job->record.trigger = trigger;
  job->record.parent = version->version;
  job->record.kind = "snapshot";
  job->snapshot_of = std::move(version);
  return enqueue(std::move(job));
}

Result<JobRecord> JobQueue::enqueue(std::shared_ptr<Job> job) {
  const std::string& model_id = job->record.model_id;
  std::lock_guard lock(mu_);
  if (stop_) return Unavailable("the server is stopping");
  for (const auto& [id, other] : jobs_) {
    if (other->record.model_id == model_id && !ended(other->record.state)) {
      return FailedPrecondition("job " + id + " for model '" + model_id + "' is already " +
                                std::string(to_string(other->record.state)));
    }
  }
  if (queue_.size() >= options_.max_queued) {
    return Unavailable("the training queue is full (" + std::to_string(options_.max_queued) +
                       " jobs wait); try again later");
  }
  job->record.id = new_job_id(++sequence_);
  job->record.created = now_iso8601();
  jobs_[job->record.id] = job;
  order_.push_back(job->record.id);
  queue_.push_back(job);
  retire_old();
  wake_.notify_one();
  log::info("training_job_queued", {{"job_id", job->record.id},
                                    {"model_id", model_id},
                                    {"kind", job->record.kind},
                                    {"actor", job->record.actor},
                                    {"trigger", job->record.trigger}});
  return job->record;
}

std::vector<JobRecord> JobQueue::list() const {
  std::lock_guard lock(mu_);
  std::vector<JobRecord> out;
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) out.push_back(jobs_.at(*it)->record);
  return out;
}

std::optional<JobRecord> JobQueue::get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  return it->second->record;
}

std::optional<std::vector<std::string>> JobQueue::logs(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  const Job& job = *it->second;
  std::vector<std::string> out(job.log_head.begin(), job.log_head.end());
  if (job.log_dropped > 0) {
    out.push_back("... " + std::to_string(job.log_dropped) + " lines left out ...");
  }
  out.insert(out.end(), job.log_tail.begin(), job.log_tail.end());
  return out;
}

Result<JobRecord> JobQueue::cancel(const std::string& id, const std::string& actor) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return NotFound("no job '" + id + "'");
  Job& job = *it->second;
  if (ended(job.record.state)) {
    return FailedPrecondition("job " + id + " has already ended (" +
                              std::string(to_string(job.record.state)) + ")");
  }
  job.cancel.store(true);
  job.record.cancel_requested = true;
  if (job.record.state == JobState::kQueued) {
    std::erase(queue_, it->second);
    job.record.state = JobState::kCancelled;
    job.record.reason = "cancelled by " + actor + " before it started";
    job.record.finished = now_iso8601();
    it->second->snapshot_of.reset();
  }
  log::info("training_job_cancel", {{"job_id", id}, {"actor", actor}});
  return job.record;
}

bool JobQueue::active(const std::string& model_id) const {
  std::lock_guard lock(mu_);
  for (const auto& [id, job] : jobs_) {
    if (job->record.model_id == model_id && !ended(job->record.state)) return true;
  }
  return false;
}

void JobQueue::work() {
  lower_this_thread_priority(kJobNice);
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = queue_.front();
      queue_.pop_front();
      job->record.state = JobState::kRunning;
      job->record.started = now_iso8601();
    }
    run(job);
  }
}

void JobQueue::run(const std::shared_ptr<Job>& job) {
  // What is in production is decided when the job starts, not when it was queued, and after
  // this server has looked at the repository: another replica may have published a version it
  // has not loaded yet (found in a test of two servers on one database: two jobs trained from
  // the same parent).
  if (!job->snapshot_of) {
    if (options_.before_job) options_.before_job(job->record.model_id);
    std::int64_t parent = 0;
    {
      std::lock_guard lock(mu_);
      parent = job->record.parent;
    }
    if (parent == 0 && options_.production_version) {
      parent = options_.production_version(job->record.model_id);
      std::lock_guard lock(mu_);
      job->record.parent = parent;
    }
  }
  JobRequest request;
  request.repository = options_.repository;
  request.model_id = job->record.model_id;
  request.job_id = job->record.id;
  request.parent = job->record.parent;
  request.postgres = options_.postgres;
  request.code_version = options_.code_version;
  request.threads = options_.trainer_threads;
  log::info("training_job_started",
            {{"job_id", job->record.id}, {"model_id", job->record.model_id}});
  const ProgressFn progress = [&](const Progress& p) {
    std::lock_guard lock(mu_);
    job->record.progress = p;
    if (p.stage == "training" && p.done > 0 && !std::isnan(p.holdout_value) &&
        job->record.history.size() < options_.max_history_points) {
      job->record.history.push_back(p.holdout_value);
    }
  };
  const LogFn log_line = [&](const std::string& line) {
    std::lock_guard lock(mu_);
    add_log(*job, line);
  };
  JobOutcome outcome;
  if (job->snapshot_of) {
    SnapshotRequest snapshot{options_.repository, job->snapshot_of, job->record.id,
                             "asked by " + job->record.actor + " (" + job->record.trigger + ")",
                             options_.code_version};
    outcome = run_snapshot_job(snapshot, progress, log_line, &job->cancel);
  } else {
    outcome = run_training_job(request, progress, log_line, &job->cancel);
  }
  bool published = false;
  {
    std::lock_guard lock(mu_);
    JobRecord& r = job->record;
    r.state = state_of(outcome.result);
    r.reason = outcome.reason;
    r.version = outcome.version;
    r.parent = outcome.parent;
    r.metric = outcome.metric;
    r.holdout = outcome.candidate_metric;
    r.parent_holdout = outcome.parent_metric;
    r.finished = now_iso8601();
    job->snapshot_of.reset();  // a finished job must not keep an unloaded version in memory
    published = r.state == JobState::kPublished;
    log::info("training_job_ended", {{"job_id", r.id},
                                     {"model_id", r.model_id},
                                     {"state", std::string(to_string(r.state))},
                                     {"version", r.version},
                                     {"reason", r.reason}});
    retire_old();
  }
  // Outside the lock: loading the version may take a while, and the API keeps answering.
  if (published && options_.on_published) options_.on_published(job->record.model_id);
}

void JobQueue::add_log(Job& job, const std::string& line) {
  const std::size_t half = std::max<std::size_t>(1, options_.log_lines / 2);
  std::string stamped = now_iso8601() + " " + line.substr(0, 4096);
  if (job.log_head.size() < half) {
    job.log_head.push_back(std::move(stamped));
    return;
  }
  job.log_tail.push_back(std::move(stamped));
  if (job.log_tail.size() > half) {
    job.log_tail.pop_front();
    ++job.log_dropped;
  }
}

void JobQueue::retire_old() {
  std::size_t finished = 0;
  for (const auto& id : order_) finished += ended(jobs_.at(id)->record.state) ? 1 : 0;
  for (auto it = order_.begin(); it != order_.end() && finished > options_.history;) {
    if (ended(jobs_.at(*it)->record.state)) {
      jobs_.erase(*it);
      it = order_.erase(it);
      --finished;
    } else {
      ++it;
    }
  }
}

}  // namespace forklift::training
