// Internal: the registry's authentication as its 401s teach it (docker token auth spec): Basic
// credentials, or bearer tokens fetched from the realm a challenge names, cached per scope set
// until they expire, with concurrent fetches for one scope set coalesced into one.
//
// Thread-safety: every member may be called from many threads at once.
#pragma once

#include "transport.hpp"

#include <registryd/oci/client/token_cache.hpp>

#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace registryd::oci::client::detail {

// "Basic base64(user:password)"
std::string basic_authorization(const credentials& c);

class token_exchange {
 public:
  // Both must outlive the exchange; tokens are fetched through `wire`.
  token_exchange(const client_options& options, transport& wire) : options_(options), wire_(wire) {}

  // The Authorization the registry should get up front for `scopes`, from what earlier 401s
  // taught: Basic credentials, a bearer token (fetched anew with `refresh`), or none.
  result<std::optional<std::string>> authorization(const std::vector<std::string>& scopes, bool refresh);

  // A 401 named a bearer realm: later requests get tokens from it. Fetches one for `scopes`
  // now (cached for the retry that follows); its failure is the request's answer.
  result<std::string> learn_bearer(const std::string& realm, const std::string& service,
                                   const std::vector<std::string>& scopes);
  // A 401 asked for Basic credentials.
  void learn_basic();

 private:
  result<std::string> bearer_token(const std::string& token_realm, const std::string& token_service,
                                   const std::vector<std::string>& scopes, bool refresh);
  result<token_answer> fetch_token(const std::string& token_realm, const std::string& token_service,
                                   const std::vector<std::string>& scopes);

  const client_options& options_;
  transport& wire_;
  token_cache tokens_;

  enum class auth_scheme { unknown, basic, bearer };
  std::mutex auth_mutex_;
  auth_scheme learned_ = auth_scheme::unknown;
  std::string realm_, service_;

  // Token fetches in flight, so concurrent requests for one scope set wait for one fetch.
  std::mutex flights_mutex_;
  std::map<std::string, std::shared_future<result<std::string>>> flights_;
};

}  // namespace registryd::oci::client::detail
