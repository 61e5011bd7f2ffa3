#include <doctest/doctest.h>
#include <libpq-fe.h>

#include <cctype>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "pgkit/config.hpp"
#include "pgkit/error.hpp"
#include "pgkit/redact.hpp"

TEST_CASE("pgkit::redact_secrets") {
  using pgkit::redact_secrets;

  SUBCASE("masks the password of a URL and keeps the rest") {
    CHECK(redact_secrets("postgresql://app:s3cret@db.internal:5432/app?sslmode=require") ==
          "postgresql://app:***@db.internal:5432/app?sslmode=require");
    CHECK(redact_secrets("postgres://u:p@h/d") == "postgres://u:***@h/d");
  }
  SUBCASE("masks URLs inside longer messages, whatever the scheme's case") {
    CHECK(redact_secrets("cannot connect to 'POSTGRESQL://a:b@c/d': timeout") ==
          "cannot connect to 'POSTGRESQL://a:***@c/d': timeout");
  }
  SUBCASE("leaves URLs without a password alone") {
    CHECK(redact_secrets("postgresql://app@db/app") == "postgresql://app@db/app");
    CHECK(redact_secrets("postgresql://db/app") == "postgresql://db/app");
  }
  SUBCASE("a password containing @ is masked whole") {
    CHECK(redact_secrets("postgresql://app:p@ss@db/app") == "postgresql://app:***@db/app");
  }
  SUBCASE("masks password= in conninfo strings and query parameters") {
    CHECK(redact_secrets("host=db password=hunter2 user=app") == "host=db password=*** user=app");
    CHECK(redact_secrets("host=db password = 'with space\\' quote' user=app") ==
          "host=db password = *** user=app");
    CHECK(redact_secrets("postgresql://db/app?user=a&password=x&sslmode=disable") ==
          "postgresql://db/app?user=a&password=***&sslmode=disable");
  }
  SUBCASE("does not touch words that merely contain 'password'") {
    CHECK(redact_secrets("column password_hash is null") == "column password_hash is null");
    CHECK(redact_secrets("fe_sendauth: no password supplied") ==
          "fe_sendauth: no password supplied");
  }
}

// --- the redaction property -----------------------------------------------------------------
//
// For generated URLs, conninfo strings and database.toml entries: neither the password as
// written nor the password libpq would use appears in describe() or in any error text. Every
// other part is lower-case letters and digits, and every password starts with "Zq", so a
// password (or a piece of one that includes its start) cannot hide in the rest of a message.

namespace {

struct libpq_options_deleter {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};

// The password libpq would use for `text`, or "" when it has none or cannot parse `text`.
std::string libpq_password(const std::string& text) {
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, libpq_options_deleter> options{
      PQconninfoParse(text.c_str(), &error)};
  PQfreemem(error);
  for (auto* option = options.get(); option != nullptr && option->keyword != nullptr; ++option) {
    if (std::string_view{option->keyword} == "password" && option->val != nullptr)
      return option->val;
  }
  return {};
}

class generator {
 public:
  explicit generator(unsigned seed) : m_random(seed) {}

  std::size_t below(std::size_t bound) {
    return std::uniform_int_distribution<std::size_t>{0, bound - 1}(m_random);
  }
  std::string word() {
    static const std::string letters = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string text;
    for (std::size_t i = 0, n = 1 + below(8); i < n; ++i)
      text += letters[below(letters.size())];
    return text;
  }
  // A password with the characters that break URLs, conninfo strings and ${...} expansion.
  std::string password() {
    static const std::string characters =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        "/@:?#&=%' \\\"${}!*[],;+~";
    std::string text = "Zq";
    for (std::size_t i = 0, n = 1 + below(14); i < n; ++i)
      text += characters[below(characters.size())];
    if (below(8) == 0)
      text.insert(2 + below(text.size() - 1), 1, '\0');
    if (below(6) == 0)
      text += "%" + std::string{"0G%Z"}.substr(below(3), 2);
    return text;
  }

 private:
  std::mt19937 m_random;
};

std::string percent_encoded(const std::string& text) {
  static const char* const hex = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0) {
      out += c;
    } else {
      out += '%';
      out += hex[byte >> 4];
      out += hex[byte & 0x0F];
    }
  }
  return out;
}

std::string conninfo_quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "'";
}

std::string toml_basic_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      out += '\\';
    if (c == '\0')
      out += "\\u0000";
    else
      out += c;
  }
  return out + "\"";
}

// What pgkit shows for `config`: its description, or the error that using it raises.
std::string shown_for(const std::function<pgkit::connection_config()>& make) {
  try {
    auto config = make();
    return config.describe();
  } catch (const pgkit::error& e) {
    return std::string{e.what()} + "\n" + e.hint();
  }
}

bool reveals(const std::string& shown, const std::string& password) {
  // The NUL-free prefix is what libpq sees; the whole text is what the person wrote.
  auto seen_by_libpq = password.substr(0, password.find('\0'));
  return shown.find(password) != std::string::npos ||
         (seen_by_libpq.size() > 2 && shown.find(seen_by_libpq) != std::string::npos);
}

}  // namespace

TEST_CASE("pgkit::redaction property: the password never shows") {
  generator random{20261201};
  auto env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  for (int round = 0; round < 3000; ++round) {
    auto password = random.password();
    auto user = random.word();
    auto host = random.word();
    auto database = random.word();
    std::string text;
    bool toml = false;
    switch (random.below(7)) {
      case 0:  // the password written into the URL as it is
        text = "postgresql://" + user + ":" + password + "@" + host + ":5432/" + database;
        break;
      case 1:  // percent-encoded, as it should be
        text =
            "postgresql://" + user + ":" + percent_encoded(password) + "@" + host + "/" + database;
        break;
      case 2:  // a query parameter
        text = "postgres://" + host + "/" + database + "?user=" + user + "&password=" + password +
               "&sslmode=disable";
        break;
      case 3:  // conninfo, unquoted
        text = "host=" + host + " user=" + user + " password=" + password + " dbname=" + database;
        break;
      case 4:  // conninfo, quoted
        text = "host=" + host + " password=" + conninfo_quoted(password) + " dbname=" + database;
        break;
      case 5:  // database.toml: url without password, password key
        text = "[connections.main]\nurl = \"postgresql://" + user + "@" + host + "/" + database +
               "\"\npassword = " + toml_basic_string(password) + "\n";
        toml = true;
        break;
      default:  // database.toml: the password inside the url
        text = "[connections.main]\nurl = " +
               toml_basic_string("postgresql://" + user + ":" + password + "@" + host + "/" +
                                 database) +
               "\n";
        toml = true;
        break;
    }
    auto shown = shown_for([&] {
      if (toml)
        return pgkit::parse_config(text, "database.toml", env).connection("main");
      return pgkit::config_from_url(text, "--addr");
    });
    INFO("input: " << text);
    INFO("shown: " << shown);
    CHECK_FALSE(reveals(shown, password));
    if (!toml) {
      auto used = libpq_password(text);
      if (!used.empty())
        CHECK(shown.find(used) == std::string::npos);
    }
  }
}
