#pragma once
// The database.toml reader (internal): the table of the keys a [connections.<name>] table may
// hold, each with the setter that reads its value into the connection. parse_config and
// config_file (pgkit/config.hpp) are built on it.

#include <cstddef>
#include <stdexcept>
#include <string_view>
#include <type_traits>

namespace pgkit::detail {

/// The TOML type of a key's value (an integer may also be a string with ${VAR} in it).
enum class value_type { string, integer, string_array };

/// One key's TOML value, read with messages that name the file, the line and the key
/// (toml_reader.cpp).
class key_value;
/// A connection being read, with what the checks across keys need (toml_reader.cpp).
struct connection_draft;

/// Reads `value` into `draft`, checking its type, range or allowed words. Throws config_error.
using key_setter = void (*)(const key_value& value, connection_draft& draft);

/// One key of a [connections.<name>] table. There is no key without its setter: the only
/// constructor takes one (a function or a captureless lambda), and nullptr does not compile.
class connection_key {
 public:
  template <typename Setter>
  constexpr connection_key(std::string_view name, value_type type, Setter setter)
      : m_name{name}, m_type{type}, m_setter{setter} {
    static_assert(!std::is_same_v<Setter, std::nullptr_t>, "a key needs a setter");
  }

  constexpr std::string_view name() const noexcept { return m_name; }
  constexpr value_type type() const noexcept { return m_type; }
  /// Reads `value` into `draft` with this key's setter.
  void set(const key_value& value, connection_draft& draft) const { m_setter(value, draft); }

 private:
  std::string_view m_name;
  value_type m_type;
  key_setter m_setter;
};

/// The key table, in the order the documentation lists the keys.
struct connection_key_list {
  const connection_key* first;
  std::size_t count;

  const connection_key* begin() const noexcept { return first; }
  const connection_key* end() const noexcept { return first + count; }
  std::size_t size() const noexcept { return count; }
};

/// Returns every key a [connections.<name>] table may hold. The table is a constant: it outlives
/// static destructors (a pool's maintenance thread may still read settings at exit).
connection_key_list connection_keys() noexcept;

}  // namespace pgkit::detail
