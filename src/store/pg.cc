#include "store/pg.h"

namespace forklift::pg {

Result<Connection> connect(const std::string& conninfo) {
  // Keywords are read in order and later ones win, so these defaults come first and anything
  // the operator's connection string sets (expanded from "dbname") overrides them.
  const char* keys[] = {"connect_timeout",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "application_name",
                        "dbname",
                        nullptr};
  const char* values[] = {"3", "5", "2", "5", "forklift", conninfo.c_str(), nullptr};
  Connection conn(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
  if (!conn) return Unavailable("out of memory connecting to PostgreSQL");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    std::string why = PQerrorMessage(conn.get());
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    return Unavailable("cannot connect to PostgreSQL (" + describe(conninfo) + "): " + why);
  }
  return conn;
}

namespace {

Result<ResultHandle> checked(PGconn* conn, ResultHandle r) {
  const ExecStatusType status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
  std::string why = r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn);
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
  if (why.empty()) why = "no answer from the server";
  return Unavailable("PostgreSQL: " + why);
}

}  // namespace

Result<ResultHandle> exec(PGconn* conn, const std::string& sql,
                          const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return checked(conn, ResultHandle(PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()),
                                                 nullptr, values.data(), nullptr, nullptr, 0)));
}

Result<ResultHandle> exec_script(PGconn* conn, const char* sql) {
  return checked(conn, ResultHandle(PQexec(conn, sql)));
}

std::string describe(const std::string& conninfo) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (options == nullptr) {
    if (error != nullptr) PQfreemem(error);
    return "(unparsable connection string)";
  }
  std::string out;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    const std::string_view key = o->keyword;
    if (o->val == nullptr || o->val[0] == '\0') continue;
    if (key != "host" && key != "hostaddr" && key != "port" && key != "dbname" && key != "user") {
      continue;
    }
    if (!out.empty()) out.push_back(' ');
    out += std::string(key) + "=" + o->val;
  }
  PQconninfoFree(options);
  return out.empty() ? "(libpq defaults)" : out;
}

}  // namespace forklift::pg
