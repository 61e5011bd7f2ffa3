#pragma once
// What create, drop, wait and up share: the database named in the connection, handled as a
// whole through the server's maintenance database.

#include "context.hpp"

namespace pgkit::cli {

/// Creates the database the run's connection names unless it exists, saying which it was
/// (`pgkit create`, and the first step of `pgkit up`).
void create_if_missing(context& ctx);

}  // namespace pgkit::cli
