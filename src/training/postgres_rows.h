// Training rows from PostgreSQL: a team's own query (data.source: postgres) or forklift's
// prediction events joined with their feedback labels (data.source: events).
//
// The query runs in a READ ONLY transaction with a statement timeout, wrapped in a LIMIT of
// max_rows + 1, and its rows are fetched one at a time (libpq's single-row mode): a query that
// returns more than the job can hold stops at the limit instead of filling memory.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "forklift/status.h"
#include "training/dataset.h"

namespace forklift::training {

struct PostgresQuery {
  std::string conninfo;
  std::string sql;  // a SELECT (no trailing ';' needed)
  std::vector<std::string> params;
  std::chrono::seconds timeout{600};
};

// Reads every row of `query` into `reader`. A row is read from a `features` column (a JSON
// object) and the label column, or from columns named like the features and the label.
Status read_postgres_rows(const PostgresQuery& query, RowReader& reader,
                          const std::atomic<bool>* cancel);

// The events query for `model_id`: prediction events joined with feedback labels on request id
// and row, labels of the last `window_hours` (0: all), oldest first.
PostgresQuery events_query(const std::string& conninfo, const std::string& model_id,
                           double window_hours);

}  // namespace forklift::training
