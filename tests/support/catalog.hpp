#pragma once
// Comparing database schemas from the catalog, the same way on every server major (pg_dump
// refuses servers newer than itself, and Debian's is 15).

#include <string>

namespace pgkit_test {

/// Describes every object in the user schemas of the database at `url` (schemas, relations
/// with their persistence, columns, constraints, indexes, functions, triggers, views,
/// sequences, enum labels, comments, policies, extensions), one sorted line each: two
/// databases with equal descriptions have equal schemas.
std::string schema_catalog(const std::string& url);

}  // namespace pgkit_test
