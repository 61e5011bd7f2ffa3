#pragma once
// What create, drop, wait and up share: the database named in the connection, handled as a
// whole through the server's maintenance database.

#include <cstddef>
#include <string>

#include "context.hpp"
#include "pgkit/database.hpp"

namespace pgkit::cli {

/// Runs `change` (creating or dropping the database the run's connection names) and says what
/// it did: "DONE database NAME" as a summary, or a note "database NAME UNCHANGED; nothing to
/// do". Returns true when it changed something.
bool change_database(context& ctx, database_change (*change)(const connection_config&),
                     const std::string& done, const std::string& unchanged);

/// Creates the database the run's connection names unless it exists, saying which it was
/// (`pgkit create`, and the first step of `pgkit up`).
void create_if_missing(context& ctx);

/// Where dump, load and apply --dump-schema read and write by default, as dbmate.
inline constexpr const char* k_default_schema_file = "db/schema.sql";

/// Returns the schema file of the run: `given` (--schema-file) when not empty, else the
/// connection's `schema_file` key in database.toml, else k_default_schema_file.
std::string schema_file_path(const std::string& given, context& ctx);

/// Throws usage_error (exit 2) when `path` exists and is not a regular file.
void check_schema_file(const std::string& path);

/// Writes the database's schema (pgkit::dump_schema) to `path`, replacing it only once complete,
/// and returns its size (`pgkit dump`, `apply --dump-schema`). Throws usage_error when `path` is
/// a directory, a FIFO or cannot be written.
std::size_t write_schema(const std::string& path, context& ctx);

}  // namespace pgkit::cli
