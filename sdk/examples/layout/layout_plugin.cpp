// A read-only registry over an OCI image layout directory (what `skopeo copy ... oci:DIR:TAG`
// writes): the layout in the host's data dir is served as one repository, the fixed one
// (system/deckhouse), with the tags its index.json names. Pull, tags/list, referrers and the
// catalog; everything else gets the spec's 405. Nothing is written and nothing is cached, so
// a layout changed on disk is served as it is now.
//   registryd serve --data-dir /srv/layout --plugin layout.so
// Walked through in docs/plugin-authors.md.
#include <registryd/oci/content_negotiation.hpp>
#include <registryd/oci/dispatcher.hpp>
#include <registryd/oci/http.hpp>
#include <registryd/oci/layout.hpp>
#include <registryd/oci/reference.hpp>
#include <registryd/oci/referrers.hpp>
#include <registryd/sdk/settings_reader.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <set>

namespace {

namespace oci = registryd::oci;
namespace sdk = registryd::sdk;
using oci::error_code;
using oci::route_kind;
using oci::http::is_head;

// A small answer from memory (JSON, a manifest) that serves HEAD too.
void send_small(const sdk::request& req, sdk::response& res, std::string_view type, const std::string& body) {
  res.status(200);
  if (!is_head(req)) return res.send(type, body);
  res.header("Content-Type", type).header("Content-Length", std::to_string(body.size()));
}

class layout_mode final : public sdk::mode_plugin {
 public:
  layout_mode(const sdk::host& host, const nlohmann::json& doc) : host_(host) {
    const sdk::settings_reader in("Layout", doc, sdk::settings_reader::any_mode);
    root_ = in.required_string("host.dataDir");
    repository_ = in.string("host.fixedRepository").value_or("system/deckhouse");
    if (auto opened = oci::image_layout::open(root_); !opened) in.fail("host.dataDir", opened.error_message());

    // The dispatcher checks names, tags, digests and access; handlers get a valid target.
    api_.read(route_kind::catalog, [this](const sdk::request& req, sdk::response& res, const oci::target&) {
      send_small(req, res, "application/json", nlohmann::json{{"repositories", {repository_}}}.dump());
    });
    api_.read(route_kind::manifest, only_mine(&layout_mode::manifest));
    api_.read(route_kind::blob, only_mine(&layout_mode::blob));
    api_.read(route_kind::tags_list, only_mine(&layout_mode::tags));
    api_.read(route_kind::referrers, only_mine(&layout_mode::referrers));
    host_.info("serving the image layout " + root_ + " as " + repository_);
  }

  void handle(const sdk::request& req, sdk::response& res) override { api_.dispatch(req, res); }

  std::string health() const override {
    auto opened = oci::image_layout::open(root_);
    return opened ? std::string() : opened.error_message();
  }

 private:
  using handler = void (layout_mode::*)(const sdk::request&, sdk::response&, const oci::target&) const;

  // The layout is one repository: any other name is unknown.
  oci::dispatcher::handler only_mine(handler fn) {
    return [this, fn](const sdk::request& req, sdk::response& res, const oci::target& t) {
      if (t.name == repository_) return (this->*fn)(req, res, t);
      oci::send_error(res, error_code::name_unknown, "this registry serves " + repository_ + " only", {{"name", t.name}});
    };
  }

  // An image_layout is for one thread: each request opens its own (two small reads). Throwing
  // plugin_error(UNAVAILABLE) answers 503 and logs it through the host.
  oci::image_layout open() const {
    auto opened = oci::image_layout::open(root_);
    if (!opened) throw sdk::plugin_error(REGISTRYD_ERR_UNAVAILABLE, opened.error_message());
    return std::move(*opened);
  }
  std::vector<oci::descriptor> index(const oci::image_layout& layout) const {
    auto entries = layout.read_index();
    if (!entries) throw sdk::plugin_error(REGISTRYD_ERR_UNAVAILABLE, entries.error_message());
    return std::move(*entries);
  }

  void manifest(const sdk::request& req, sdk::response& res, const oci::target& t) const {
    const auto layout = open();
    std::optional<oci::digest> d = t.digest;
    for (const auto& entry : t.is_tag() ? index(layout) : std::vector<oci::descriptor>{}) {
      if (oci::ref_name(entry) == t.reference) d = entry.digest;
    }
    auto unknown = [&](const std::string& why) { oci::send_error(res, error_code::manifest_unknown, why); };
    std::error_code ec;
    const auto size = d ? std::filesystem::file_size(layout.blob_path(*d), ec) : 0;
    if (!d || ec) return unknown("manifest " + t.reference + " is not in the layout");
    if (size > oci::max_manifest_size) return unknown(d->str() + " is a blob, not a manifest");
    auto bytes = layout.read_blob(*d);  // verified against its digest: a corrupt file is a 500
    if (!bytes) throw std::runtime_error(bytes.error_message());
    auto parsed = oci::parse_manifest(*bytes);
    if (!parsed) return unknown(d->str() + " is not a manifest: " + parsed.error_message());
    switch (oci::negotiate_manifest(oci::http::header_values(req, "Accept"), parsed->media_type, t.is_tag())) {
      case oci::negotiation::refuse: return unknown(oci::negotiation_message(parsed->media_type));
      case oci::negotiation::serve_platform_child: {
        d = oci::default_platform_child(*bytes, parsed->media_type);
        if (!d || !(bytes = layout.read_blob(*d)) || !(parsed = oci::parse_manifest(*bytes))) {
          return unknown("the manifest list has no linux/amd64 image in the layout");
        }
        break;
      }
      case oci::negotiation::serve: break;
    }
    res.header("Docker-Content-Digest", d->str()).header("ETag", "\"" + d->str() + "\"");
    if (oci::http::not_modified(req, *d)) return (void)res.status(304);
    send_small(req, res, parsed->media_type, *bytes);
  }

  void blob(const sdk::request& req, sdk::response& res, const oci::target& t) const {
    const int fd = ::open(open().blob_path(*t.digest).c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0) {
      if (fd >= 0) ::close(fd);
      return oci::send_error(res, error_code::blob_unknown, "blob " + t.reference + " is not in the layout");
    }
    // Digest, ETag, caching headers, Range, If-None-Match: the SDK answers them.
    const auto slice = oci::http::begin_blob_answer(req, res, *t.digest, static_cast<std::uint64_t>(st.st_size));
    if (!slice || is_head(req) || slice->length == 0) {
      ::close(fd);
      if (slice && !is_head(req)) res.send("application/octet-stream", "");
      return;
    }
    res.send_file("application/octet-stream", fd, slice->offset, slice->length);  // the host closes fd
  }

  // Listing Tags: sorted, with ?n= and ?last= and a Link to the next page. Entries named with
  // something that is no tag cannot be pulled by it, so they are not listed.
  void tags(const sdk::request& req, sdk::response& res, const oci::target& t) const {
    const auto page = oci::http::read_page(req);
    if (!page) return oci::http::send_page_invalid(res);
    std::set<std::string> names;
    for (const auto& entry : index(open())) {
      if (auto name = oci::ref_name(entry); name && oci::is_valid_tag(*name)) names.insert(*name);
    }
    const std::vector<std::string> all(names.begin(), names.end());
    const auto listed = oci::http::answer_page(res, "/v2/" + t.name + "/tags/list", all, page->last,
                                               page->n.value_or(all.size()));
    send_small(req, res, "application/json", nlohmann::json{{"name", t.name}, {"tags", listed}}.dump());
  }

  // Listing Referrers: every manifest reachable from index.json whose subject is the digest.
  void referrers(const sdk::request& req, sdk::response& res, const oci::target& t) const {
    const auto layout = open();
    std::deque<oci::descriptor> seen;  // deques keep the addresses referrer_entry borrows
    std::deque<oci::manifest> manifests;
    std::vector<oci::referrer_entry> entries;
    std::vector<oci::descriptor> todo = index(layout);
    std::set<oci::digest> visited;
    while (!todo.empty()) {
      const oci::descriptor next = todo.back();
      todo.pop_back();
      if (!visited.insert(next.digest).second) continue;
      auto bytes = layout.read_blob(next.digest);
      if (!bytes) continue;  // absent or corrupt: nothing to list
      auto parsed = oci::parse_manifest(*bytes, next.media_type);
      if (!parsed) continue;
      todo.insert(todo.end(), parsed->children().begin(), parsed->children().end());
      if (!parsed->subject || parsed->subject->digest != *t.digest) continue;
      seen.push_back(oci::describe_manifest(*bytes, *parsed));
      manifests.push_back(std::move(*parsed));
      entries.push_back({&seen.back(), &manifests.back()});
    }
    const auto filter = oci::http::query_value(req, "artifactType");
    const auto answer = oci::build_referrers(*t.digest, entries, filter);
    if (answer.filter_applied) res.header("OCI-Filters-Applied", "artifactType");
    send_small(req, res, "application/vnd.oci.image.index.v1+json", answer.body());
  }

  sdk::host host_;
  std::string root_;
  std::string repository_;
  oci::dispatcher api_{"this registry serves an image layout read-only"};
};

}  // namespace

REGISTRYD_PLUGIN(layout_mode, "Layout", "1.0.0")
