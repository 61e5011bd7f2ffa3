#pragma once
/// Everything pgkit offers, in one include.

#include "pgkit/builtin.hpp"
#include "pgkit/connection.hpp"
#include "pgkit/error.hpp"
#include "pgkit/listener.hpp"
#include "pgkit/notify.hpp"
#include "pgkit/redact.hpp"
#include "pgkit/version.hpp"
