#pragma once
/// Everything pgkit offers, in one include.

#include "pgkit/auth.hpp"
#include "pgkit/cache.hpp"
#include "pgkit/config.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"
#include "pgkit/listener.hpp"
#include "pgkit/migration.hpp"
#include "pgkit/notify.hpp"
#include "pgkit/pool.hpp"
#include "pgkit/query.hpp"
#include "pgkit/queue.hpp"
#include "pgkit/redact.hpp"
#include "pgkit/session.hpp"
#include "pgkit/store.hpp"
#include "pgkit/transaction.hpp"
#include "pgkit/version.hpp"
