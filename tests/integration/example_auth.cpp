#include <iostream>

#include <pgkit/pgkit.hpp>

int main() {
  try {
    // The auth module must be applied (pgkit apply auth); check() says so at boot otherwise.
    pgkit::auth_store auth{pgkit::start("main")};
    auth.check();

    // Sign-up: the password is hashed with argon2id; emails are unique among live users.
    pgkit::new_user signup;
    signup.email = "ada@example.com";
    signup.password = "correct horse battery staple";
    pgkit::user ada = auth.create_user(signup);

    // Sign-in: std::nullopt alike for a wrong password, an unknown email and a banned user.
    if (auto in = auth.sign_in("Ada@Example.com", "correct horse battery staple", "192.0.2.1")) {
      // The token goes into the cookie; the table holds only its SHA-256 digest.
      if (auto session = auth.get_session(in->token))
        std::cout << "signed in from " << session->ip.value_or("?") << '\n';
      auth.delete_session(in->token);  // sign-out
    }

    // A password reset link: the token works once, for an hour.
    std::string reset = auth.create_one_time_token(ada.id, pgkit::token_type::password_reset);
    if (auto user_id = auth.use_one_time_token(reset, pgkit::token_type::password_reset))
      auth.set_password(*user_id, "a new passphrase");
    bool again = auth.use_one_time_token(reset, pgkit::token_type::password_reset).has_value();
    std::cout << (again ? "used twice" : "used once") << '\n';

    // Search: LIKE patterns, lists combined with OR, pages of ids; never a deleted user.
    pgkit::user_search search;
    search.emails = {"%@example.com"};
    for (const pgkit::user& found : auth.list_users(search))
      std::cout << found.email.value_or("") << '\n';

    // Soft delete: the user's sessions end and their tokens stop working.
    auth.delete_user(ada.id);
    std::cout << (auth.get_user(ada.id) ? "still there" : "deleted") << '\n';
  } catch (const pgkit::error& e) {
    std::cerr << "app: " << e.what() << '\n';
    if (!e.hint().empty())
      std::cerr << "app: hint: " << e.hint() << '\n';
    return 1;
  }
}
