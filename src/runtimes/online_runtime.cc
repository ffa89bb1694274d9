// The built-in `online` runtime: models that learn from each feedback label as it arrives.
//
// FTRL-Proximal (McMahan et al., "Ad Click Prediction: a View from the Trenches", KDD 2013),
// per-coordinate learning rates, L1 and L2 regularisation, for two models:
//   ftrl_logistic  p = sigmoid(w.x + b), for binary labels (the output is P(label = 1))
//   ftrl_linear    y = w.x + b, for numbers (trained in standardised label units)
// Features are standardised with running means and variances (Welford), so that raw features of
// very different scales share one learning rate; a missing value counts as the mean. `forget`
// shrinks the accumulated squared gradients a little at each update, so that the learning rate
// never decays to nothing and the model keeps following a world that changes.
//
// The artifact (JSON) is the whole state; snapshot() writes the same format, so a snapshot is an
// ordinary version:
//   {"format": 1, "algorithm": "ftrl_linear", "alpha": 0.1, "beta": 1, "l1": 0, "l2": 0,
//    "forget": 0.001, "columns": 16, "z": [...], "n": [...], "mean": [...], "m2": [...],
//    "count": 5000, "label_mean": 1400, "label_m2": ..., "updates": 5000}
// A new model needs only {"format": 1, "algorithm": "ftrl_linear"}: every array starts at zero.
// runtime_options: learn (true; false serves the state without changing it). When to snapshot
// (snapshot_every_updates, snapshot_every_minutes) is read by the server's scheduler
// (training/job_scheduler.cc), not here.
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <shared_mutex>

#include "common/json_writer.h"
#include "forklift/runtime.h"
#include "runtimes/dense_rows.h"

namespace forklift {
namespace {

constexpr std::size_t kMaxColumns = 100000;
constexpr std::uintmax_t kMaxArtifactBytes = 256u << 20;
// A standardised feature or an error beyond this many standard deviations is taken as this many.
constexpr double kMaxStep = 1e3;

struct Params {
  bool logistic = false;
  double alpha = 0.1, beta = 1, l1 = 0, l2 = 0, forget = 0.001;
};

// The state FTRL keeps, one entry per column and one for the bias (last).
struct State {
  std::vector<double> z, n;
  std::vector<double> mean, m2;  // running feature statistics (Welford)
  double count = 0;
  double label_mean = 0, label_m2 = 0;  // ftrl_linear: the labels'
  std::uint64_t updates = 0;
};

class OnlineModel final : public Model {
 public:
  OnlineModel(Params params, State state, std::size_t columns, bool learn)
      : params_(params),
        state_(std::move(state)),
        columns_(columns),
        learn_(learn),
        loaded_updates_(state_.updates) {}

  Status predict(const Batch& batch, std::vector<Value>& outputs) const override {
    std::vector<float> row(columns_);
    std::shared_lock lock(mu_);
    for (std::size_t r = 0; r < batch.rows(); ++r) {
      write_dense_row(batch.row(r), row.data());
      const double y = output(score(row));
      // A state that went non-finite answers an error, never a null that looks like a prediction.
      if (!std::isfinite(y)) return Internal("the online model's state is not finite");
      outputs.emplace_back(y);
    }
    return Status::Ok();
  }

  bool learns() const override { return learn_; }

  Status learn(const Batch& batch, const std::vector<double>& labels) const override {
    if (!learn_) return FailedPrecondition("learning is off for this version (learn: false)");
    if (labels.size() != batch.rows()) return InvalidArgument("one label per row");
    std::vector<float> row(columns_);
    std::unique_lock lock(mu_);
    for (std::size_t r = 0; r < batch.rows(); ++r) {
      const double y = labels[r];
      if (!std::isfinite(y) || (params_.logistic && y != 0 && y != 1)) continue;
      write_dense_row(batch.row(r), row.data());
      observe(row, y);
      const double p = params_.logistic ? sigmoid(score(row)) : score(row);
      const double target = params_.logistic ? y : standardised_label(y);
      // The gradient of log loss and of squared loss alike, bounded so that one wild row cannot
      // make the state infinite.
      const double error = std::clamp(p - target, -kMaxStep, kMaxStep);
      for (std::size_t i = 0; i <= columns_; ++i) {
        const double x =
            i == columns_ ? 1.0 : std::clamp(standardised(row, i), -kMaxStep, kMaxStep);
        if (x != 0) update(i, error * x);
      }
      ++state_.updates;
    }
    updates_.store(state_.updates - loaded_updates_, std::memory_order_relaxed);
    return Status::Ok();
  }

  Result<std::string> snapshot() const override {
    std::shared_lock lock(mu_);
    std::string j = "{\"format\":1,\"algorithm\":";
    j += params_.logistic ? "\"ftrl_logistic\"" : "\"ftrl_linear\"";
    const auto number = [&j](const char* key, double v) {
      j += ",\"";
      j += key;
      j += "\":";
      json::append_double(j, v);
    };
    number("alpha", params_.alpha);
    number("beta", params_.beta);
    number("l1", params_.l1);
    number("l2", params_.l2);
    number("forget", params_.forget);
    j += ",\"columns\":" + std::to_string(columns_);
    const auto array = [&j](const char* key, const std::vector<double>& v) {
      j += ",\"";
      j += key;
      j += "\":[";
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) j.push_back(',');
        json::append_double(j, v[i]);
      }
      j += "]";
    };
    array("z", state_.z);
    array("n", state_.n);
    array("mean", state_.mean);
    array("m2", state_.m2);
    number("count", state_.count);
    number("label_mean", state_.label_mean);
    number("label_m2", state_.label_m2);
    j += ",\"updates\":" + std::to_string(state_.updates) + "}\n";
    return j;
  }

  std::uint64_t updates() const override { return updates_.load(std::memory_order_relaxed); }

 private:
  static double sigmoid(double s) { return 1 / (1 + std::exp(-std::clamp(s, -35.0, 35.0))); }

  double standardised(const std::vector<float>& row, std::size_t i) const {
    const double v = row[i];
    if (std::isnan(v) || state_.count < 2) return 0;
    const double var = state_.m2[i] / (state_.count - 1);
    return var > 1e-12 ? (v - state_.mean[i]) / std::sqrt(var) : 0;
  }
  double label_scale() const {
    if (state_.count < 2) return 1;
    const double var = state_.label_m2 / (state_.count - 1);
    return var > 1e-12 ? std::sqrt(var) : 1;
  }
  double standardised_label(double y) const { return (y - state_.label_mean) / label_scale(); }

  double weight(std::size_t i) const {
    const double z = state_.z[i];
    const double l1 = i == columns_ ? 0 : params_.l1;  // the bias is not regularised
    if (std::fabs(z) <= l1) return 0;
    const double sign = z < 0 ? -1 : 1;
    return -(z - sign * l1) /
           ((params_.beta + std::sqrt(state_.n[i])) / params_.alpha + params_.l2);
  }

  // w.x + b in the model's units (standardised labels for ftrl_linear).
  double score(const std::vector<float>& row) const {
    double s = weight(columns_);
    for (std::size_t i = 0; i < columns_; ++i) {
      const double x = standardised(row, i);
      if (x != 0) s += weight(i) * x;
    }
    return s;
  }

  double output(double s) const {
    return params_.logistic ? sigmoid(s) : state_.label_mean + s * label_scale();
  }

  // Welford's running mean and variance of each feature (and of the label).
  void observe(const std::vector<float>& row, double y) const {
    state_.count += 1;
    for (std::size_t i = 0; i < columns_; ++i) {
      const double v = row[i];
      if (std::isnan(v)) continue;
      const double d = v - state_.mean[i];
      state_.mean[i] += d / state_.count;
      state_.m2[i] += d * (v - state_.mean[i]);
    }
    if (!params_.logistic) {
      const double d = y - state_.label_mean;
      state_.label_mean += d / state_.count;
      state_.label_m2 += d * (y - state_.label_mean);
    }
  }

  // One FTRL-Proximal step on coordinate i with gradient g (under mu_, held exclusively).
  void update(std::size_t i, double g) const {
    // Forgetting shrinks n; z is rescaled with it so that the weight stays what it was (w is
    // -z / ((beta + sqrt(n)) / alpha + l2) outside the L1 band): only future steps get larger.
    const double before = (params_.beta + std::sqrt(state_.n[i])) / params_.alpha + params_.l2;
    state_.n[i] *= 1 - params_.forget;
    const double after = (params_.beta + std::sqrt(state_.n[i])) / params_.alpha + params_.l2;
    state_.z[i] *= after / before;
    const double w = weight(i);
    const double n_before = state_.n[i];
    const double sigma = (std::sqrt(n_before + g * g) - std::sqrt(n_before)) / params_.alpha;
    state_.z[i] += g - sigma * w;
    state_.n[i] = n_before + g * g;
  }

  const Params params_;
  mutable std::shared_mutex mu_;
  mutable State state_;  // guarded by mu_: learn() is const (Model's contract) and writes it
  const std::size_t columns_;
  const bool learn_;
  const std::uint64_t loaded_updates_;  // the artifact's: updates() counts those since
  mutable std::atomic<std::uint64_t> updates_{0};
};

// Reads a number field; absent keeps `fallback`. Refuses a value outside [lo, hi].
Status read_number(simdjson::dom::object o, const char* key, double lo, double hi, double& out) {
  simdjson::dom::element e;
  if (o[key].get(e)) return Status::Ok();
  double v = 0;
  if (e.get_double().get(v) || !std::isfinite(v) || v < lo || v > hi) {
    return InvalidArgument(std::string("'") + key + "' must be a number from " +
                           std::to_string(lo) + " to " + std::to_string(hi));
  }
  out = v;
  return Status::Ok();
}

Status read_array(simdjson::dom::object o, const char* key, std::size_t size,
                  std::vector<double>& out) {
  out.assign(size, 0);
  simdjson::dom::element e;
  if (o[key].get(e)) return Status::Ok();
  simdjson::dom::array a;
  if (e.get_array().get(a) || a.size() != size) {
    return InvalidArgument(std::string("'") + key + "' must be an array of " +
                           std::to_string(size) + " numbers");
  }
  std::size_t i = 0;
  for (simdjson::dom::element x : a) {
    if (x.get_double().get(out[i]) || !std::isfinite(out[i])) {
      return InvalidArgument(std::string("'") + key + "' holds something that is not a number");
    }
    ++i;
  }
  return Status::Ok();
}

Result<std::unique_ptr<Model>> load_online(const LoadContext& ctx) {
  auto columns = dense_columns(*ctx.schema, "online");
  if (!columns.ok()) return columns.status();
  if (*columns == 0 || *columns > kMaxColumns) {
    return InvalidArgument("the online runtime takes 1 to 100000 numeric columns");
  }
  if (ctx.schema->output.type != ValueType::kFloat) {
    return InvalidArgument("the online runtime's output is a float");
  }
  // The size first: a state file of gigabytes is refused before it is read.
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(ctx.artifact, ec);
  if (ec) return FailedPrecondition(ctx.artifact.string() + ": cannot be read");
  if (size > kMaxArtifactBytes) {
    return FailedPrecondition(ctx.artifact.string() + ": larger than 256 MiB");
  }
  simdjson::padded_string text;
  if (simdjson::padded_string::load(ctx.artifact.string()).get(text)) {
    return FailedPrecondition(ctx.artifact.string() + ": cannot be read");
  }
  if (text.size() > kMaxArtifactBytes) {
    return FailedPrecondition(ctx.artifact.string() + ": larger than 256 MiB");
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::dom::object o;
  if (parser.parse(text).get(root) || root.get_object().get(o)) {
    return FailedPrecondition(ctx.artifact.string() + ": not a JSON object");
  }
  const auto bad = [&ctx](const Status& s) {
    return FailedPrecondition(ctx.artifact.string() + ": " + s.message());
  };
  std::int64_t format = 0;
  if (o["format"].get_int64().get(format) || format != 1) {
    return bad(InvalidArgument("'format' must be 1"));
  }
  std::string_view algorithm;
  if (o["algorithm"].get_string().get(algorithm) ||
      (algorithm != "ftrl_linear" && algorithm != "ftrl_logistic")) {
    return bad(InvalidArgument("'algorithm' must be ftrl_linear or ftrl_logistic"));
  }
  Params p;
  p.logistic = algorithm == "ftrl_logistic";
  for (Status s :
       {read_number(o, "alpha", 1e-9, 1e6, p.alpha), read_number(o, "beta", 1e-6, 1e6, p.beta),
        read_number(o, "l1", 0, 1e9, p.l1), read_number(o, "l2", 0, 1e9, p.l2),
        read_number(o, "forget", 0, 0.5, p.forget)}) {
    if (!s.ok()) return bad(s);
  }
  if (std::int64_t stated = 0;
      !o["columns"].get_int64().get(stated) && stated != static_cast<std::int64_t>(*columns)) {
    return bad(InvalidArgument("'columns' is " + std::to_string(stated) + " but the schema makes " +
                               std::to_string(*columns)));
  }
  State st;
  double updates = 0;
  for (Status s : {read_array(o, "z", *columns + 1, st.z), read_array(o, "n", *columns + 1, st.n),
                   read_array(o, "mean", *columns, st.mean), read_array(o, "m2", *columns, st.m2),
                   read_number(o, "count", 0, 1e18, st.count),
                   read_number(o, "label_mean", -1e300, 1e300, st.label_mean),
                   read_number(o, "label_m2", 0, 1e300, st.label_m2),
                   read_number(o, "updates", 0, 1e18, updates)}) {
    if (!s.ok()) return bad(s);
  }
  for (double n : st.n) {
    if (n < 0) return bad(InvalidArgument("'n' holds a negative number"));
  }
  st.updates = static_cast<std::uint64_t>(updates);
  const bool learn = ctx.option("learn", "true") != "false";
  return std::unique_ptr<Model>(std::make_unique<OnlineModel>(p, std::move(st), *columns, learn));
}

}  // namespace

void register_online_runtime() {
  register_runtime(RuntimeInfo{"online", "forklift_online_json", load_online});
}

}  // namespace forklift
