#include <registryd/auth/scope.hpp>

#include <catch2/catch.hpp>

namespace auth = registryd::auth;
using auth::resource_actions;

TEST_CASE("a scope splits at its first and last colon, so a name may hold a port", "[auth]") {
  auto s = auth::parse_scope("repository:system/deckhouse:pull,push");
  REQUIRE(s);
  CHECK(*s == resource_actions{"repository", "system/deckhouse", {"pull", "push"}});
  auto port = auth::parse_scope("repository:localhost:5000/a/b:pull");
  REQUIRE(port);
  CHECK(port->name == "localhost:5000/a/b");
  CHECK(port->actions == std::vector<std::string>{"pull"});
  auto catalog = auth::parse_scope("registry:catalog:*");
  REQUIRE(catalog);
  CHECK(*catalog == resource_actions{"registry", "catalog", {"*"}});
}

TEST_CASE("scope actions are sorted and deduplicated, empty ones dropped", "[auth]") {
  auto s = auth::parse_scope("repository:a:push,pull,,push");
  REQUIRE(s);
  CHECK(s->actions == std::vector<std::string>{"pull", "push"});
}

TEST_CASE("malformed scopes are refused", "[auth]") {
  for (const char* text : {"", "repository", "repository:a", ":a:pull", "repository::pull",
                           "repository:a:", "repository:a:,", "repository:a b:pull",
                           "repository:a\"b:pull", "repository:a\nb:pull"}) {
    INFO(text);
    CHECK_FALSE(auth::parse_scope(text));
  }
}

TEST_CASE("scope parameters merge per resource, and one may hold several separated by spaces",
          "[auth]") {
  const auto list = auth::parse_scopes(
      {"repository:a:pull", "repository:a:push repository:b:pull", "nonsense", "registry:catalog:*"});
  REQUIRE(list.size() == 3);
  CHECK(list[0] == resource_actions{"registry", "catalog", {"*"}});
  CHECK(list[1] == resource_actions{"repository", "a", {"pull", "push"}});
  CHECK(list[2] == resource_actions{"repository", "b", {"pull"}});
  CHECK(auth::to_string(list) == "registry:catalog:* repository:a:pull,push repository:b:pull");
}

TEST_CASE("repository names follow the distribution grammar", "[auth]") {
  for (const char* ok : {"a", "system/deckhouse", "a-b/c.d/e_f", "a__b", "a---b", "0/9"}) {
    INFO(ok);
    CHECK(auth::is_repository_name(ok));
  }
  for (const char* bad : {"", "A", "a/", "/a", "a//b", "a/../b", "-a", "a-", "a___b", "a:5000/b",
                          "a..b", "a b"}) {
    INFO(bad);
    CHECK_FALSE(auth::is_repository_name(bad));
  }
  CHECK_FALSE(auth::is_repository_name(std::string(256, 'a')));
}

TEST_CASE("a read-only account is granted pull and nothing else, whatever it asks for",
          "[auth]") {
  const auto granted = auth::grant(
      auth::access_read_only,
      {{"repository", "a", {"delete", "pull", "push"}}, {"repository", "b", {"*"}},
       {"repository", "c", {"push"}}, {"registry", "catalog", {"*"}}});
  CHECK(granted == std::vector<resource_actions>{{"repository", "a", {"pull"}},
                                                 {"repository", "b", {"pull"}}});
}

TEST_CASE("a read-write account is granted what it asks for, * included", "[auth]") {
  const std::vector<resource_actions> asked{{"registry", "catalog", {"*"}},
                                            {"repository", "a", {"delete", "pull", "push"}},
                                            {"repository", "b", {"*"}}};
  CHECK(auth::grant(auth::access_read_write, asked) == asked);
}

TEST_CASE("mirror accounts may list the catalog and the puller may not push", "[auth]") {
  const std::vector<resource_actions> asked{{"registry", "catalog", {"*"}},
                                            {"repository", "a", {"delete", "pull", "push"}}};
  CHECK(auth::grant(auth::access_mirror_puller, asked) ==
        std::vector<resource_actions>{{"registry", "catalog", {"*"}}, {"repository", "a", {"pull"}}});
  CHECK(auth::grant(auth::access_mirror_pusher, asked) ==
        std::vector<resource_actions>{{"registry", "catalog", {"*"}},
                                      {"repository", "a", {"pull", "push"}}});
  CHECK(auth::grant(auth::access_mirror_pusher, {{"repository", "a", {"*"}}}) ==
        std::vector<resource_actions>{{"repository", "a", {"pull", "push"}}});
}

TEST_CASE("the packages resource is pull for anyone who may pull, asked as pull or *", "[auth]") {
  for (const auto access : {auth::access_read_only, auth::access_read_write}) {
    CHECK(auth::grant(access, {{"registry", "packages", {"*"}}}) ==
          std::vector<resource_actions>{{"registry", "packages", {"pull"}}});
    CHECK(auth::grant(access, {{"registry", "packages", {"pull", "push"}}}) ==
          std::vector<resource_actions>{{"registry", "packages", {"pull"}}});
  }
  CHECK(auth::grant(auth::access_push, {{"registry", "packages", {"*"}}}).empty());
}

TEST_CASE("what no account can hold is dropped without an error", "[auth]") {
  CHECK(auth::grant(auth::access_read_write,
                    {{"repository", "Bad/Name", {"pull"}},
                     {"repository", "a", {"admin"}},
                     {"registry", "other", {"*"}},
                     {"registry", "catalog", {"pull"}},
                     {"repository(plugin)", "a", {"pull"}}})
            .empty());
}

TEST_CASE("a grant covers what it names, and * covers every action", "[auth]") {
  const std::vector<resource_actions> granted{{"repository", "a", {"pull"}},
                                              {"repository", "b", {"*"}},
                                              {"registry", "catalog", {"*"}}};
  CHECK(auth::covers(granted, {{"repository", "a", {"pull"}}}));
  CHECK_FALSE(auth::covers(granted, {{"repository", "a", {"pull", "push"}}}));
  CHECK(auth::covers(granted, {{"repository", "b", {"delete", "pull", "push"}}}));
  CHECK_FALSE(auth::covers(granted, {{"repository", "c", {"pull"}}}));
  CHECK(auth::covers(granted, {{"registry", "catalog", {"*"}}}));
  CHECK(auth::covers(granted, {}));
  CHECK_FALSE(auth::covers({}, {{"repository", "a", {"pull"}}}));
}

TEST_CASE("the access bits of a grant on one repository are the plugin ABI's", "[auth]") {
  const std::vector<resource_actions> granted{{"repository", "a", {"pull"}},
                                              {"repository", "a", {"push"}},
                                              {"repository", "b", {"*"}}};
  CHECK(auth::repository_access(granted, "a") == (REGISTRYD_ACCESS_PULL | REGISTRYD_ACCESS_PUSH));
  CHECK(auth::repository_access(granted, "b") ==
        (REGISTRYD_ACCESS_PULL | REGISTRYD_ACCESS_PUSH | REGISTRYD_ACCESS_DELETE));
  CHECK(auth::repository_access(granted, "c") == 0);
}
