#pragma once
/// glimr's named cache: a cache of its own under a name, over the one `cache` table. Its keys
/// never meet another name's, and clear() and sweep() touch its own entries only.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pgkit/cache.hpp"

namespace pgkit {

/// The entries of one name in a cache store: the name is the resource type of every entry, so
/// two names never share a key (the table's key is the pair). Thread-safe, as the store is;
/// copies share the store.
class named_cache {
 public:
  /// A named cache on a store of its own over `connections` (glimr's `cache.start(pool, name)`).
  /// Throws usage_error for a name that is empty, holds a NUL byte or is longer than
  /// options.max_key_size, and as cache_store's constructor does.
  named_cache(std::shared_ptr<pool> connections, std::string name, cache_options options = {});
  /// A named cache on a store that several names share. Throws as the constructor above.
  named_cache(std::shared_ptr<cache_store> store, std::string name);

  /// Returns the name (the entries' resource type).
  const std::string& name() const noexcept { return m_name; }
  /// Returns the store underneath.
  cache_store& store() const noexcept { return *m_store; }

  /// cache_store::get for this name.
  std::optional<std::string> get(std::string_view key) const;
  /// cache_store::get_many for this name.
  std::vector<std::optional<std::string>> get_many(const std::vector<std::string>& keys) const;
  /// cache_store::set for this name.
  void set(std::string_view key, std::string_view value, std::optional<ttl> lifetime) const;
  /// cache_store::set for this name, with the store's default ttl.
  void set(std::string_view key, std::string_view value) const;
  /// cache_store::remove for this name.
  bool remove(std::string_view key) const;
  /// Deletes every entry of this name (and no other); returns how many.
  std::size_t clear() const;
  /// cache_store::get_or_set for this name.
  std::string get_or_set(std::string_view key, std::optional<ttl> lifetime,
                         const std::function<std::string()>& compute) const;
  /// cache_store::expire for this name.
  bool expire(std::string_view key, std::optional<ttl> lifetime) const;
  /// cache_store::touch for this name.
  bool touch(std::string_view key, ttl lifetime) const;
  /// Deletes this name's expired entries (cache_store::sweep with resource_type set to the
  /// name). Throws usage_error when options.resource_type names another.
  sweep_result sweep(sweep_options options = {}) const;
  /// Returns how many of this name's entries are expired now.
  std::size_t count_expired() const;

 private:
  std::shared_ptr<cache_store> m_store;
  std::string m_name;
};

}  // namespace pgkit
