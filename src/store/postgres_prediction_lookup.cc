#include "store/postgres_prediction_lookup.h"

#include <simdjson.h>

#include <cmath>
#include <map>

namespace forklift {
namespace {

// A text[] literal for the ids ({"a","b"}): each quoted, with " and \ escaped.
std::string array_literal(const std::vector<std::string>& ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) out.push_back(',');
    out.push_back('"');
    for (char c : ids[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  return out + "}";
}

}  // namespace

Result<std::vector<LookedUpPrediction>> PostgresPredictionLookup::find(
    const std::vector<std::string>& request_ids) {
  if (request_ids.empty()) return std::vector<LookedUpPrediction>{};
  if (request_ids.size() > kMaxIds) return InvalidArgument("too many request ids at once");
  if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) {
    auto conn = pg::connect(conninfo_);
    if (!conn.ok())
      return Unavailable("the events database is unreachable: " + conn.status().message());
    conn_ = std::move(conn).value();
  }
  // The newest prediction of each id (a reused id: the last one, as in memory), its rows in
  // order. Output values that are not numbers come back as NULL.
  auto rows = pg::exec(
      conn_.get(),
      "SELECT event->>'request_id', event->>'model_id', (event->>'version')::bigint, "
      "COALESCE((event->>'row')::int, 0), "
      "CASE WHEN jsonb_typeof(event->'output') = 'number' THEN (event->>'output')::float8 END "
      "FROM forklift_events WHERE type = 'prediction' AND event->>'request_id' = ANY($1::text[]) "
      "AND written_at > now() - $2 * interval '1 second' ORDER BY id",
      {array_literal(request_ids), std::to_string(max_age_.count())});
  if (!rows.ok()) {
    if (PQstatus(conn_.get()) != CONNECTION_OK) conn_.reset();
    return Unavailable("looking up predictions failed: " + rows.status().message());
  }
  const PGresult* r = rows->get();
  std::map<std::string, LookedUpPrediction, std::less<>> found;
  for (int i = 0; i < PQntuples(r); ++i) {
    const std::string id(pg::text(r, i, 0));
    const std::string model(pg::text(r, i, 1));
    const std::int64_t version = std::strtoll(PQgetvalue(r, i, 2), nullptr, 10);
    const long row = std::strtol(PQgetvalue(r, i, 3), nullptr, 10);
    const double output =
        PQgetisnull(r, i, 4) ? std::nan("") : std::strtod(PQgetvalue(r, i, 4), nullptr);
    LookedUpPrediction& p = found[id];
    if (row == 0 || p.model_id != model || p.version != version) {
      // Row 0 starts a prediction; a later one with the same id replaces an earlier.
      p = LookedUpPrediction{id, model, version, {}};
    }
    if (row < 0 || row > 100000 || static_cast<std::size_t>(row) != p.outputs.size()) continue;
    p.outputs.push_back(output);
  }
  std::vector<LookedUpPrediction> out;
  for (auto& [id, p] : found) out.push_back(std::move(p));
  return out;
}

}  // namespace forklift
