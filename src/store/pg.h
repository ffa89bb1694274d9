// A thin RAII layer over libpq: connections and results that free themselves, parameterised
// statements, and errors as Status values.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "forklift/status.h"

namespace forklift::pg {

struct ConnectionDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Connection = std::unique_ptr<PGconn, ConnectionDeleter>;
using ResultHandle = std::unique_ptr<PGresult, ResultDeleter>;

// Opens a connection from a libpq connection string or URI. Unless it says otherwise, the
// attempt gives up after 3 s and TCP keepalives notice a dead peer within about 15 s.
Result<Connection> connect(const std::string& conninfo);

// Runs one statement with text parameters (nullopt is SQL NULL). Fails unless the server
// answered with rows or a completed command.
Result<ResultHandle> exec(PGconn* conn, const std::string& sql,
                          const std::vector<std::optional<std::string>>& params = {});

// Runs several statements separated by semicolons (no parameters): schema scripts.
Result<ResultHandle> exec_script(PGconn* conn, const char* sql);

// The connection string without secrets, for logs: "host=... port=... dbname=... user=...".
std::string describe(const std::string& conninfo);

// The value of row `row`, column `col` as text ("" for NULL).
inline std::string_view text(const PGresult* r, int row, int col) {
  return {PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col))};
}

}  // namespace forklift::pg
