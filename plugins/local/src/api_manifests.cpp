// Manifests: GET/HEAD with content negotiation, PUT with every check the spec asks for, DELETE
// by digest or by tag.
#include "api_support.hpp"
#include "registry_api.hpp"

#include <registryd/oci/content_negotiation.hpp>
#include <registryd/oci/manifest.hpp>
#include <registryd/oci/media_types.hpp>
#include <registryd/oci/reference.hpp>

#include <nlohmann/json.hpp>

namespace registryd::local {
namespace {

using oci::storage::errc;

void manifest_unknown(sdk::response& res, const oci::target& r, const std::string& message) {
  res.send_error(404, "MANIFEST_UNKNOWN", message, {{"name", r.name}, {"reference", r.reference}});
}

}  // namespace

void registry_api::get_manifest(const sdk::request& req, sdk::response& res, const oci::target& r) {
  std::optional<oci::digest> d = r.digest;
  const bool by_tag = r.is_tag();
  if (by_tag) {
    auto t = repos_.resolve_tag(r.name, r.reference);
    if (!t) {
      if (t.code() != errc::not_found) return storage_failure(res, t.error());
      return manifest_unknown(res, r, "manifest " + r.name + ":" + r.reference + " is not known");
    }
    d = std::move(t.value());
  }
  auto opened = repos_.open_manifest(r.name, *d);
  if (!opened) {
    if (opened.code() != errc::not_found) return storage_failure(res, opened.error());
    return manifest_unknown(res, r, "manifest " + r.name + "@" + d->str() + " is not known");
  }

  switch (oci::negotiate_manifest(header_values(req, "Accept"), opened->record.media_type, by_tag)) {
    case oci::negotiation::refuse:
      return manifest_unknown(res, r, oci::negotiation_message(opened->record.media_type));
    case oci::negotiation::serve_platform_child: {
      auto bytes = opened->file.read_all();
      if (!bytes) return storage_failure(res, bytes.error());
      const auto child = oci::default_platform_child(*bytes, opened->record.media_type);
      if (!child) return manifest_unknown(res, r, "the manifest list has no linux/amd64 image for this client");
      auto child_opened = repos_.open_manifest(r.name, *child);
      if (!child_opened) {
        if (child_opened.code() != errc::not_found) return storage_failure(res, child_opened.error());
        return manifest_unknown(res, r, "manifest " + r.name + "@" + child->str() + " is not known");
      }
      d = *child;
      opened = std::move(child_opened);
      break;
    }
    case oci::negotiation::serve:
      break;
  }

  const std::string etag = "\"" + d->str() + "\"";
  res.header("Docker-Content-Digest", d->str());
  res.header("ETag", etag);
  if (oci::http::not_modified(req, *d)) {
    res.status(304);
    return;
  }
  ++counters_.manifest_reads;
  const auto& rec = opened->record;
  res.status(200);
  if (is_head(req)) {
    res.header("Content-Type", rec.media_type);
    res.header("Content-Length", std::to_string(opened->file.size()));
    return;
  }
  const std::uint64_t size = opened->file.size();
  res.send_file(rec.media_type, opened->file.release(), 0, size);
}

void registry_api::put_manifest(const sdk::request& req, sdk::response& res, const oci::target& r) {
  const std::optional<oci::digest>& by_digest = r.digest;
  std::optional<std::string> tag;
  if (r.is_tag()) tag = r.reference;
  auto too_large = [&] {
    res.send_error(413, "SIZE_INVALID",
                   "the manifest is larger than " + std::to_string(oci::max_manifest_size / (1024 * 1024)) +
                       " MiB, the most registryd accepts");
  };
  if (req.content_length() > static_cast<std::int64_t>(oci::max_manifest_size)) return too_large();

  std::string body;
  bool over = false;
  const bool complete = req.read_body([&](std::string_view chunk) {
    if (body.size() + chunk.size() > oci::max_manifest_size) {
      over = true;
      return false;
    }
    body.append(chunk);
    return true;
  });
  if (over) return too_large();
  if (!complete) return res.send_error(400, "MANIFEST_INVALID", "the manifest body was cut short");

  const std::string content_type(req.header("Content-Type").value_or(""));
  auto parsed = oci::parse_manifest(body, content_type);
  if (!parsed) {
    return res.send_error(400, "MANIFEST_INVALID", "manifest invalid: " + parsed.error_message(),
                          parsed.error_message());
  }
  const oci::manifest& m = *parsed;
  const oci::digest actual =
      oci::digest_of(body, by_digest ? by_digest->algorithm() : oci::digest_algorithm::sha256);
  if (by_digest && actual != *by_digest) {
    ++counters_.digest_mismatches;
    return res.send_error(400, "DIGEST_INVALID",
                          "the manifest's digest is " + actual.str() + ", not " + by_digest->str(),
                          {{"expected", by_digest->str()}, {"actual", actual.str()}});
  }

  // Everything the manifest references must be in this repository already, except its
  // subject (referrers may be pushed before what they refer to) and layers that live elsewhere
  // (non-distributable layers name their URLs).
  auto blob_unknown = [&](const oci::descriptor& desc, const char* what) {
    res.send_error(400, "MANIFEST_BLOB_UNKNOWN",
                   std::string(what) + " " + desc.digest.str() + " is not in " + r.name + "; push it first",
                   {{"digest", desc.digest.str()}});
  };
  // Each check also touches what it found (link_blob touches the blob, then re-writes the
  // link): an online GC that is about to remove an old, unlinked-looking blob sees the fresh
  // mtime and keeps it, or has already moved it and the check fails (docs/gc.md).
  // A descriptor's size must be the stored content's: a client that trusts the manifest reads
  // exactly `size` bytes, so a wrong one would serve truncated or padded content.
  auto size_mismatch = [&](const oci::descriptor& desc, const char* what, std::uint64_t stored) {
    res.send_error(400, "MANIFEST_INVALID",
                   std::string(what) + " " + desc.digest.str() + " is " + std::to_string(stored) +
                       " bytes in " + r.name + ", but the manifest says " + std::to_string(desc.size),
                   {{"digest", desc.digest.str()}, {"size", desc.size}, {"stored", stored}});
  };
  for (const auto& b : m.blobs()) {
    if (!b.urls.empty()) continue;
    const auto stored = repos_.stat_blob(r.name, b.digest);
    if (!stored || !repos_.link_blob(r.name, b.digest).ok()) return blob_unknown(b, "blob");
    if (*stored != static_cast<std::uint64_t>(b.size)) return size_mismatch(b, "blob", *stored);
  }
  for (const auto& c : m.children()) {
    const auto child = repos_.stat_manifest(r.name, c.digest);
    if (!child || !blobs_.touch(c.digest)) return blob_unknown(c, "manifest");
    if (child->size != static_cast<std::uint64_t>(c.size)) return size_mismatch(c, "manifest", child->size);
  }

  oci::storage::manifest_put put{.bytes = body,
                                 .digest = actual,
                                 .media_type = m.media_type,
                                 .subject = std::nullopt,
                                 .referrer_descriptor = nullptr,
                                 .tag = tag};
  if (m.subject) {
    put.subject = m.subject->digest;
    oci::descriptor self(m.media_type, actual, static_cast<std::int64_t>(body.size()));
    self.artifact_type = m.artifact_type();
    self.annotations = m.annotations;
    put.referrer_descriptor = self.to_json();
  }
  auto stored = repos_.put_manifest(r.name, put);
  if (!stored) return storage_failure(res, stored.error());
  ++counters_.manifests_pushed;

  res.status(201);
  res.header("Location", "/v2/" + r.name + "/manifests/" + actual.str());
  res.header("Docker-Content-Digest", actual.str());
  if (m.subject) res.header("OCI-Subject", m.subject->digest.str());
  res.header("Content-Length", "0");
}

void registry_api::delete_manifest(const sdk::request&, sdk::response& res, const oci::target& r) {
  if (r.is_tag()) {
    auto st = repos_.delete_tag(r.name, r.reference);
    if (!st) {
      if (st.code() != errc::not_found) return storage_failure(res, st.error());
      return manifest_unknown(res, r, "tag " + r.reference + " is not in " + r.name);
    }
    res.status(202);
    res.header("Content-Length", "0");
    return;
  }
  const auto& d = r.digest;
  auto removed = repos_.delete_manifest(r.name, *d);
  if (!removed) {
    if (removed.code() != errc::not_found) return storage_failure(res, removed.error());
    return manifest_unknown(res, r, "manifest " + r.name + "@" + d->str() + " is not known");
  }
  res.status(202);
  res.header("Content-Length", "0");
}

}  // namespace registryd::local
