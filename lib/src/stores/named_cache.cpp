#include "pgkit/named_cache.hpp"

#include "pgkit/error.hpp"

namespace pgkit {
namespace {

std::string checked_name(std::string name, std::size_t max_size) {
  if (name.empty())
    throw usage_error("a named cache's name is empty", "give each named cache a non-empty name");
  if (name.find('\0') != std::string::npos)
    throw usage_error("a named cache's name contains a NUL byte",
                      "PostgreSQL text cannot hold NUL bytes; use a printable name");
  if (name.size() > max_size) {
    throw usage_error("a named cache's name is " + std::to_string(name.size()) +
                          " bytes long, more than the maximum of " + std::to_string(max_size),
                      "use a shorter name or raise cache_options::max_key_size");
  }
  return name;
}

}  // namespace

named_cache::named_cache(std::shared_ptr<pool> connections, std::string name, cache_options options)
    : m_name(checked_name(std::move(name), options.max_key_size)) {
  m_store = std::make_shared<cache_store>(std::move(connections), std::move(options));
}

named_cache::named_cache(std::shared_ptr<cache_store> store, std::string name) {
  if (!store)
    throw usage_error("a named cache needs a store, not a null pointer");
  m_name = checked_name(std::move(name), store->options().max_key_size);
  m_store = std::move(store);
}

std::optional<std::string> named_cache::get(std::string_view key) const {
  return m_store->get(m_name, key);
}

std::vector<std::optional<std::string>> named_cache::get_many(
    const std::vector<std::string>& keys) const {
  return m_store->get_many(m_name, keys);
}

void named_cache::set(std::string_view key, std::string_view value,
                      std::optional<ttl> lifetime) const {
  m_store->set(m_name, key, value, lifetime);
}

void named_cache::set(std::string_view key, std::string_view value) const {
  m_store->set(m_name, key, value);
}

bool named_cache::remove(std::string_view key) const {
  return m_store->remove(m_name, key);
}

std::size_t named_cache::clear() const {
  return m_store->clear(m_name);
}

std::string named_cache::get_or_set(std::string_view key, std::optional<ttl> lifetime,
                                    const std::function<std::string()>& compute) const {
  return m_store->get_or_set(m_name, key, lifetime, compute);
}

bool named_cache::expire(std::string_view key, std::optional<ttl> lifetime) const {
  return m_store->expire(m_name, key, lifetime);
}

bool named_cache::touch(std::string_view key, ttl lifetime) const {
  return m_store->touch(m_name, key, lifetime);
}

sweep_result named_cache::sweep(sweep_options options) const {
  if (options.resource_type && *options.resource_type != m_name) {
    throw usage_error("named cache '" + m_name + "' sweeps its own entries, not those of '" +
                          *options.resource_type + "'",
                      "leave sweep_options::resource_type unset");
  }
  options.resource_type = m_name;
  return m_store->sweep(options);
}

std::size_t named_cache::count_expired() const {
  return m_store->count_expired(m_name);
}

}  // namespace pgkit
