#include <registryd/oci/client/link_header.hpp>

#include <registryd/oci/client/message.hpp>
#include <registryd/sdk/text.hpp>

namespace registryd::oci::client {
namespace {

using sdk::trim;

// True when a space-separated rel list holds "next".
bool rel_has_next(std::string_view rels) {
  while (!rels.empty()) {
    const auto sp = rels.find(' ');
    if (iequals(rels.substr(0, sp), "next")) return true;
    if (sp == std::string_view::npos) break;
    rels.remove_prefix(sp + 1);
  }
  return false;
}

}  // namespace

std::optional<std::string> next_link(std::string_view header) {
  std::size_t i = 0;
  while (i < header.size()) {
    const auto open = header.find('<', i);
    if (open == std::string_view::npos) break;
    const auto close = header.find('>', open + 1);
    if (close == std::string_view::npos) break;
    const auto uri = header.substr(open + 1, close - open - 1);
    // The parameters run to the next ',' outside quotes, which starts the next link.
    std::size_t j = close + 1;
    bool next = false;
    while (j < header.size() && header[j] != ',') {
      while (j < header.size() && (header[j] == ';' || header[j] == ' ' || header[j] == '\t')) ++j;
      const auto eq = header.find_first_of("=;,", j);
      const auto name = trim(header.substr(j, eq == std::string_view::npos ? eq : eq - j));
      j = eq == std::string_view::npos ? header.size() : eq;
      if (j >= header.size() || header[j] != '=') continue;
      ++j;
      while (j < header.size() && (header[j] == ' ' || header[j] == '\t')) ++j;
      std::string value;
      if (j < header.size() && header[j] == '"') {
        ++j;
        while (j < header.size() && header[j] != '"') {
          if (header[j] == '\\' && j + 1 < header.size()) ++j;
          value.push_back(header[j++]);
        }
        if (j < header.size()) ++j;
      } else {
        const auto end = header.find_first_of(";,", j);
        value = std::string(trim(header.substr(j, end == std::string_view::npos ? end : end - j)));
        j = end == std::string_view::npos ? header.size() : end;
      }
      if (iequals(name, "rel") && rel_has_next(value)) next = true;
    }
    if (next && !uri.empty()) return std::string(uri);
    i = j + 1;
  }
  return std::nullopt;
}

std::optional<std::string> next_link(const std::vector<std::string_view>& headers) {
  for (const auto h : headers) {
    if (auto link = next_link(h)) return link;
  }
  return std::nullopt;
}

}  // namespace registryd::oci::client
