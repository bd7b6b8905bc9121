#include <registryd/containerd/description.hpp>

#include "pem.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <set>
#include <string_view>

namespace registryd::containerd {
namespace {

using nlohmann::json;

// Thrown inside this file only, turned into util::error at the API edge.
struct invalid {
  std::string message;
};

[[noreturn]] void fail(const std::string& path, const std::string& why) {
  throw invalid{path + ": " + why};
}

std::string type_name(const json& j) { return j.type_name(); }

// RFC 3629 UTF-8, no overlong forms, no surrogates. TOML files must be valid UTF-8, and a JSON
// value built in memory (rather than parsed) is not checked by nlohmann.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7F;
  });
}

void require_object(const json& j, const std::string& path) {
  if (!j.is_object()) fail(path, "must be an object, not " + type_name(j));
}

void refuse_unknown_keys(const json& obj, const std::string& path,
                         std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : obj.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string list;
      for (const auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      fail(path + "." + key, "unknown key (known: " + list + ")");
    }
  }
}

std::string get_string(const json& j, const std::string& path, bool allow_empty = false) {
  if (!j.is_string()) fail(path, "must be a string, not " + type_name(j));
  const auto& s = j.get_ref<const std::string&>();
  if (!valid_utf8(s)) fail(path, "is not valid UTF-8");
  if (!allow_empty && s.empty()) fail(path, "must not be empty");
  return s;
}

bool get_bool(const json& j, const std::string& path) {
  if (!j.is_boolean()) fail(path, "must be a boolean, not " + type_name(j));
  return j.get<bool>();
}

// host[:port] with a DNS name or IPv4 address, or [IPv6][:port]. It becomes a directory name, so
// nothing that could climb out of registry.d or hide as a dot file is accepted.
// (Hand-written rather than std::regex: GCC 12 reports false maybe-uninitialized warnings in
// <regex> in optimized sanitizer builds, and warnings are errors.)
bool is_host_name(std::string_view host) {
  auto alnum = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  };
  auto digits = [](std::string_view s) {
    return !s.empty() && s.size() <= 5 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  std::string_view name = host;
  if (!host.empty() && host.front() == '[') {  // [IPv6][:port]
    const auto close = host.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    const std::string_view addr = host.substr(1, close - 1);
    if (!std::all_of(addr.begin(), addr.end(), [](char c) {
          return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                 c == ':' || c == '.';
        })) {
      return false;
    }
    const std::string_view rest = host.substr(close + 1);
    return rest.empty() || (rest.front() == ':' && digits(rest.substr(1)));
  }
  if (const auto colon = host.find(':'); colon != std::string_view::npos) {
    if (!digits(host.substr(colon + 1))) return false;
    name = host.substr(0, colon);
  }
  return !name.empty() && alnum(name.front()) && alnum(name.back()) &&
         std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '.' || c == '-'; });
}

// An HTTP header name: an RFC 9110 token.
bool is_token(std::string_view s) {
  static constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           extra.find(c) != std::string_view::npos;
  });
}

void check_host_name(const std::string& host, const std::string& path) {
  if (!is_host_name(host)) {
    fail(path, "\"" + host + "\" is not a registry host (host[:port], e.g. registry.example.com:5000)");
  }
  if (host.find("..") != std::string::npos) fail(path, "\"" + host + "\" contains \"..\"");
  const auto colon = host.rfind(':');
  const auto bracket = host.rfind(']');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    const long port = std::stol(host.substr(colon + 1));
    if (port < 1 || port > 65535) fail(path, "port " + std::to_string(port) + " is out of range");
  }
}

// http(s)://authority[/path]; containerd parses it with Go's net/url and appends /v2 itself.
void check_url(const std::string& url, const std::string& path) {
  const bool https = url.rfind("https://", 0) == 0;
  const bool http = url.rfind("http://", 0) == 0;
  if (!http && !https) fail(path, "\"" + url + "\" must start with http:// or https://");
  if (has_control(url) || url.find(' ') != std::string::npos) {
    fail(path, "must not contain spaces or control characters");
  }
  if (url.find_first_of("?#") != std::string::npos) {
    fail(path, "\"" + url + "\" must not have a query or fragment");
  }
  const std::string rest = url.substr(https ? 8 : 7);
  const std::string authority = rest.substr(0, rest.find('/'));
  if (authority.empty()) fail(path, "\"" + url + "\" has no host");
  if (authority.find('@') != std::string::npos) {
    fail(path, "\"" + url + "\" must not carry credentials; use auth");
  }
  check_host_name(authority, path);
}

mirror parse_mirror(const json& j, const std::string& path) {
  require_object(j, path);
  refuse_unknown_keys(j, path,
                      {"url", "capabilities", "ca", "skipVerify", "overridePath", "headers",
                       "auth", "rewrites"});
  mirror m;
  if (!j.contains("url")) fail(path + ".url", "is required");
  m.url = get_string(j.at("url"), path + ".url");
  check_url(m.url, path + ".url");

  if (j.contains("capabilities")) {
    const auto& caps = j.at("capabilities");
    const std::string cpath = path + ".capabilities";
    if (!caps.is_array()) fail(cpath, "must be an array, not " + type_name(caps));
    // An empty list means "everything, push included" to containerd: never what was meant.
    if (caps.empty()) fail(cpath, "must name at least one of pull, resolve, push");
    m.capabilities.clear();
    for (std::size_t i = 0; i < caps.size(); ++i) {
      const std::string ipath = cpath + "[" + std::to_string(i) + "]";
      const std::string c = get_string(caps[i], ipath);
      if (c != "pull" && c != "resolve" && c != "push") {
        fail(ipath, "\"" + c + "\" is not a capability (pull, resolve, push)");
      }
      if (std::find(m.capabilities.begin(), m.capabilities.end(), c) != m.capabilities.end()) {
        fail(ipath, "\"" + c + "\" is listed twice");
      }
      m.capabilities.push_back(c);
    }
  }  // else the default: pull, resolve

  if (j.contains("skipVerify")) m.skip_verify = get_bool(j.at("skipVerify"), path + ".skipVerify");
  if (m.skip_verify && m.is_https()) {
    fail(path + ".skipVerify",
         "TLS verification cannot be switched off for an https:// mirror; give its ca instead");
  }
  if (j.contains("overridePath")) {
    m.override_path = get_bool(j.at("overridePath"), path + ".overridePath");
  }

  if (j.contains("ca") && !j.at("ca").is_null()) {
    const std::string capath = path + ".ca";
    const std::string pem = get_string(j.at("ca"), capath);
    if (!m.is_https()) fail(capath, "a CA is meaningful for https:// mirrors only");
    auto canonical = canonical_pem_certificates(pem);
    if (!canonical.ok()) fail(capath, canonical.error_message());
    m.ca_pem = std::move(canonical.value());
  }

  if (j.contains("headers")) {
    const auto& hs = j.at("headers");
    const std::string hpath = path + ".headers";
    require_object(hs, hpath);
    for (const auto& [name, value] : hs.items()) {
      const std::string npath = hpath + "." + name;
      if (!is_token(name)) fail(npath, "is not a valid HTTP header name");
      std::vector<std::string> values;
      auto add = [&](const json& v, const std::string& vpath) {
        std::string s = get_string(v, vpath, true);
        if (has_control(s)) fail(vpath, "must not contain control characters");
        values.push_back(std::move(s));
      };
      if (value.is_array()) {
        if (value.empty()) fail(npath, "must have at least one value");
        for (std::size_t i = 0; i < value.size(); ++i) {
          add(value[i], npath + "[" + std::to_string(i) + "]");
        }
      } else {
        add(value, npath);
      }
      m.headers.emplace_back(name, std::move(values));
    }
  }

  if (j.contains("auth") && !j.at("auth").is_null()) {
    const auto& a = j.at("auth");
    const std::string apath = path + ".auth";
    require_object(a, apath);
    refuse_unknown_keys(a, apath, {"username", "password"});
    if (!a.contains("username")) fail(apath + ".username", "is required");
    if (!a.contains("password")) fail(apath + ".password", "is required");
    mirror_auth auth{get_string(a.at("username"), apath + ".username"),
                     get_string(a.at("password"), apath + ".password", true)};
    m.auth = std::move(auth);
  }

  if (j.contains("rewrites")) {
    const auto& rs = j.at("rewrites");
    const std::string rpath = path + ".rewrites";
    if (!rs.is_array()) fail(rpath, "must be an array, not " + type_name(rs));
    for (std::size_t i = 0; i < rs.size(); ++i) {
      const std::string ipath = rpath + "[" + std::to_string(i) + "]";
      require_object(rs[i], ipath);
      refuse_unknown_keys(rs[i], ipath, {"regex", "replace"});
      if (!rs[i].contains("regex")) fail(ipath + ".regex", "is required");
      if (!rs[i].contains("replace")) fail(ipath + ".replace", "is required");
      // The regex is Go RE2 syntax, evaluated by containerd; it is not compiled here because
      // std::regex speaks another dialect and would refuse valid RE2.
      m.rewrites.push_back({get_string(rs[i].at("regex"), ipath + ".regex"),
                            get_string(rs[i].at("replace"), ipath + ".replace", true)});
    }
  }
  return m;
}

registry_host parse_host(const json& j, const std::string& path) {
  require_object(j, path);
  refuse_unknown_keys(j, path, {"host", "server", "mirrors"});
  registry_host h;
  if (!j.contains("host")) fail(path + ".host", "is required");
  h.host = get_string(j.at("host"), path + ".host");
  check_host_name(h.host, path + ".host");
  if (j.contains("server") && !j.at("server").is_null()) {
    h.server = get_string(j.at("server"), path + ".server");
    check_url(*h.server, path + ".server");
  }
  if (!j.contains("mirrors")) fail(path + ".mirrors", "is required");
  const auto& ms = j.at("mirrors");
  if (!ms.is_array()) fail(path + ".mirrors", "must be an array, not " + type_name(ms));
  // containerd 1.6 treats a hosts.toml without any [host] table as unreadable and falls back to
  // Docker-style certificate files, so a host must name at least one mirror.
  if (ms.empty()) fail(path + ".mirrors", "must name at least one mirror");
  std::set<std::string> urls;
  for (std::size_t i = 0; i < ms.size(); ++i) {
    const std::string mpath = path + ".mirrors[" + std::to_string(i) + "]";
    mirror m = parse_mirror(ms[i], mpath);
    // Two [host."<url>"] tables with one name would make the TOML invalid.
    if (!urls.insert(m.url).second) fail(mpath + ".url", "\"" + m.url + "\" is listed twice");
    h.mirrors.push_back(std::move(m));
  }
  return h;
}

}  // namespace

util::result<description> parse_description(const nlohmann::json& doc) {
  try {
    if (!doc.is_object()) fail("$", "the description must be a JSON object, not " + type_name(doc));
    refuse_unknown_keys(doc, "$", {"hosts"});
    if (!doc.contains("hosts")) fail("hosts", "is required");
    const auto& hs = doc.at("hosts");
    if (!hs.is_array()) fail("hosts", "must be an array, not " + type_name(hs));
    description d;
    std::set<std::string> names;
    for (std::size_t i = 0; i < hs.size(); ++i) {
      const std::string hpath = "hosts[" + std::to_string(i) + "]";
      registry_host h = parse_host(hs[i], hpath);
      if (!names.insert(h.host).second) {
        fail(hpath + ".host", "\"" + h.host + "\" is described twice");
      }
      d.hosts.push_back(std::move(h));
    }
    return d;
  } catch (const invalid& e) {
    return util::error{"invalid containerd description: " + e.message};
  }
}

}  // namespace registryd::containerd
