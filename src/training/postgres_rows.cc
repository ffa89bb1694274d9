#include "training/postgres_rows.h"

#include "store/pg.h"

namespace forklift::training {
namespace {

// The team's query without the trailing semicolons and spaces that would end the subquery.
std::string trimmed(std::string sql) {
  while (!sql.empty() &&
         (sql.back() == ';' || std::isspace(static_cast<unsigned char>(sql.back())))) {
    sql.pop_back();
  }
  return sql;
}

// Runs one statement that returns no rows.
Status command(PGconn* conn, const std::string& sql) {
  auto r = pg::exec(conn, sql);
  return r.ok() ? Status::Ok() : r.status();
}

}  // namespace

Status read_postgres_rows(const PostgresQuery& query, RowReader& reader,
                          const std::atomic<bool>* cancel) {
  auto conn = pg::connect(query.conninfo);
  if (!conn.ok()) return conn.status();
  PGconn* c = conn->get();
  if (Status s = command(c, "BEGIN TRANSACTION READ ONLY"); !s.ok()) return s;
  if (Status s = command(
          c, "SET LOCAL statement_timeout = " + std::to_string(query.timeout.count() * 1000));
      !s.ok()) {
    return s;
  }
  const std::string sql = "SELECT * FROM (" + trimmed(query.sql) +
                          ") AS forklift_training_rows LIMIT " +
                          std::to_string(reader.limits().max_rows + 1);
  std::vector<const char*> values;
  for (const auto& p : query.params) values.push_back(p.c_str());
  if (PQsendQueryParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                        nullptr, nullptr, 0) != 1 ||
      PQsetSingleRowMode(c) != 1) {
    return Unavailable(std::string("postgres: cannot run the training query: ") +
                       PQerrorMessage(c));
  }
  Status failure;
  std::vector<std::string> names;
  std::vector<std::string_view> name_views, cells;
  int features_column = -1, label_column = -1;
  std::size_t row_number = 0;
  bool stop = false;
  // Every result is taken (PQgetResult until null), even after stopping, so the connection is
  // left in a usable state; stopping early cancels the query on the server.
  for (;;) {
    pg::ResultHandle result(PQgetResult(c));
    if (!result) break;
    const ExecStatusType status = PQresultStatus(result.get());
    if (status == PGRES_TUPLES_OK) continue;  // the end of the rows
    if (status != PGRES_SINGLE_TUPLE) {
      if (failure.ok()) {
        failure = InvalidArgument(std::string("postgres: the training query failed: ") +
                                  PQresultErrorMessage(result.get()));
      }
      continue;
    }
    if (stop) continue;
    if (names.empty()) {
      for (int i = 0; i < PQnfields(result.get()); ++i) {
        names.emplace_back(PQfname(result.get(), i));
        if (names.back() == "features") features_column = i;
        if (names.back() == reader.label_name()) label_column = i;
      }
      name_views.assign(names.begin(), names.end());
      if (label_column < 0) {
        failure = InvalidArgument("postgres: the training query returns no column named '" +
                                  reader.label_name() + "'");
        stop = true;
      }
    }
    if (stop) continue;
    if ((cancel && cancel->load(std::memory_order_relaxed)) || !reader.wants_more()) {
      stop = true;
      if (PGcancel* cancel_handle = PQgetCancel(c)) {
        char error[256];
        PQcancel(cancel_handle, error, sizeof(error));
        PQfreeCancel(cancel_handle);
      }
      continue;
    }
    const std::string where = "row " + std::to_string(++row_number);
    if (features_column >= 0) {
      reader.add_json_features(pg::text(result.get(), 0, features_column),
                               pg::text(result.get(), 0, label_column), where);
    } else {
      cells.clear();
      for (int i = 0; i < PQnfields(result.get()); ++i)
        cells.push_back(pg::text(result.get(), 0, i));
      reader.add_cells(name_views, cells, where);
    }
  }
  pg::exec(c, "ROLLBACK");
  if (cancel && cancel->load(std::memory_order_relaxed)) return Unavailable("cancelled");
  // A query cancelled because the rows reached their limit reports "canceling statement": that
  // is not a failure.
  if (stop && reader.report().truncated) return Status::Ok();
  return failure;
}

PostgresQuery events_query(const std::string& conninfo, const std::string& model_id,
                           double window_hours) {
  PostgresQuery q;
  q.conninfo = conninfo;
  q.sql = R"sql(
SELECT p.event->'features' AS features, f.event->>'label' AS label
FROM forklift_events f
JOIN forklift_events p
  ON p.type = 'prediction'
 AND p.event->>'request_id' = f.event->>'request_id'
 AND coalesce(p.event->>'row', '0') = coalesce(f.event->>'row', '0')
WHERE f.type = 'feedback' AND p.model_id = $1
  AND ($2::float8 = 0 OR f.written_at > now() - make_interval(secs => $2::float8 * 3600))
ORDER BY f.id)sql";
  q.params = {model_id, std::to_string(window_hours)};
  return q;
}

}  // namespace forklift::training
