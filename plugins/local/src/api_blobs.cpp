// Blobs and blob uploads: GET/HEAD (with Range), DELETE, and every way to push one:
// monolithic POST ?digest=, POST + PUT, POST + PATCH... + PUT (Content-Range, 416 out of
// order), upload status, cancel, and cross-repository mount.
#include "api_support.hpp"
#include "registry_api.hpp"

#include <registryd/oci/reference.hpp>

namespace registryd::local {
namespace {

using oci::storage::errc;

void digest_invalid(sdk::response& res, const std::string& text, const std::string& why) {
  res.send_error(400, "DIGEST_INVALID", why, {{"digest", text}});
}

void upload_unknown(sdk::response& res, const oci::target& r) {
  res.send_error(404, "BLOB_UPLOAD_UNKNOWN", "upload " + r.reference + " is not known in " + r.name,
                 {{"uuid", r.reference}});
}

// The ?digest= parameter of a completing request: absent, malformed or a digest.
struct digest_param {
  bool present = false;
  std::string text;
  std::optional<oci::digest> value;
};

digest_param read_digest_param(const sdk::request& req) {
  digest_param p;
  if (!req.query_param("digest")) return p;
  p.present = true;
  p.text = query_value(req, "digest").value_or(std::string(*req.query_param("digest")));
  p.value = oci::digest::parse(p.text);
  return p;
}

// What reading a request body into an upload did.
struct body_outcome {
  bool complete = false;                               // the whole body arrived
  std::uint64_t received = 0;
  std::optional<oci::storage::store_error> write_error;  // the disk refused a write
};

template <typename Sink>
body_outcome stream_body(const sdk::request& req, Sink& sink) {
  body_outcome out;
  out.complete = req.read_body([&](std::string_view chunk) {
    auto st = sink.append(chunk);
    if (!st) {
      out.write_error = st.error();
      return false;
    }
    out.received += chunk.size();
    return true;
  });
  return out;
}

}  // namespace

void registry_api::blob_created(sdk::response& res, const std::string& name, const oci::digest& d) {
  res.status(201);
  res.header("Location", "/v2/" + name + "/blobs/" + d.str());
  res.header("Docker-Content-Digest", d.str());
  res.header("Content-Length", "0");
}

void registry_api::session_headers(sdk::response& res, const std::string& name, const std::string& id,
                                   std::uint64_t size) {
  res.header("Location", "/v2/" + name + "/blobs/uploads/" + id);
  res.header("Range", upload_range(size));
  res.header("Docker-Upload-UUID", id);
  res.header("Content-Length", "0");
}

// ---- blobs -----------------------------------------------------------------------------------

void registry_api::get_blob(const sdk::request& req, sdk::response& res, const oci::target& r) {
  const auto& d = r.digest;
  auto file = repos_.open_blob(r.name, *d);
  if (!file) {
    if (file.code() != errc::not_found) return storage_failure(res, file.error());
    return res.send_error(404, "BLOB_UNKNOWN", "blob " + d->str() + " is not in " + r.name,
                          {{"digest", d->str()}});
  }
  const auto slice = oci::http::begin_blob_answer(req, res, *d, file->size());
  if (!slice) return;  // 304 or 416, answered
  ++counters_.blob_reads;
  if (is_head(req)) return;
  if (slice->length == 0) return res.send("application/octet-stream", "");
  // Zero-copy where the transport allows it: the host reads the descriptor, and keeps it open
  // even if the blob is deleted meanwhile.
  res.send_file("application/octet-stream", file->release(), slice->offset, slice->length);
}

void registry_api::delete_blob(const sdk::request&, sdk::response& res, const oci::target& r) {
  const auto& d = r.digest;
  auto st = repos_.unlink_blob(r.name, *d);
  if (!st) {
    if (st.code() != errc::not_found) return storage_failure(res, st.error());
    return res.send_error(404, "BLOB_UNKNOWN", "blob " + d->str() + " is not in " + r.name,
                          {{"digest", d->str()}});
  }
  res.status(202);
  res.header("Content-Length", "0");
}

// ---- uploads ---------------------------------------------------------------------------------

void registry_api::start_upload(const sdk::request& req, sdk::response& res, const oci::target& r) {
  // Cross-repository mount: 201 when the blob can be linked at once, otherwise an ordinary
  // upload session (202), as the spec allows.
  if (const auto mount = query_value(req, "mount")) {
    if (const auto d = oci::digest::parse(*mount)) {
      const auto from = query_value(req, "from");
      bool available = false;
      if (from && !from->empty()) {
        // The user's pull access is global (the host grants it per user), so reading `from`
        // needs no further check than that the user may pull at all.
        available = oci::is_valid_repository_name(*from) && req.may(REGISTRYD_ACCESS_PULL) &&
                    repos_.stat_blob(*from, *d).has_value();
      } else {
        // Without `from`: the blob store is shared, so a blob it holds can be linked
        // ("automatic content discovery" in the spec).
        available = req.may(REGISTRYD_ACCESS_PULL) && blobs_.exists(*d);
      }
      if (available) {
        auto st = repos_.link_blob(r.name, *d);
        if (st) {
          ++counters_.blobs_mounted;
          return blob_created(res, r.name, *d);
        }
        if (st.code() != errc::not_found) return storage_failure(res, st.error());
        // Deleted between the check and the link: fall back to an upload.
      }
    }
  }

  const digest_param dp = read_digest_param(req);
  if (dp.present) {
    if (!dp.value) return digest_invalid(res, dp.text, "\"" + dp.text + "\" is not a digest registryd can verify");
    return monolithic_upload(req, res, r.name, *dp.value);
  }

  auto id = uploads_.create(r.name);
  if (!id) return storage_failure(res, id.error());
  res.status(202);
  session_headers(res, r.name, *id, 0);
}

void registry_api::monolithic_upload(const sdk::request& req, sdk::response& res, const std::string& name,
                                     const oci::digest& d) {
  auto writer = blobs_.create_writer(d.algorithm());
  if (!writer) return storage_failure(res, writer.error());
  const body_outcome body = stream_body(req, *writer);
  if (body.write_error) return storage_failure(res, *body.write_error);
  if (!body.complete) {
    return res.send_error(400, "BLOB_UPLOAD_INVALID", "the request body was cut short after " +
                                                          std::to_string(body.received) + " bytes");
  }
  auto info = writer->commit(d);
  if (!info) {
    if (info.code() == errc::digest_mismatch) {
      ++counters_.digest_mismatches;
      return digest_invalid(res, d.str(), info.error_message());
    }
    return storage_failure(res, info.error());
  }
  auto st = repos_.link_blob(name, d);
  if (!st) return storage_failure(res, st.error());
  ++counters_.blobs_pushed;
  counters_.blob_bytes_pushed += info->size;
  blob_created(res, name, d);
}

void registry_api::upload_status(const sdk::request&, sdk::response& res, const oci::target& r) {
  auto lease = uploads_.acquire(r.reference, r.name);
  if (!lease) {
    if (lease.code() != errc::not_found) return storage_failure(res, lease.error());
    return upload_unknown(res, r);
  }
  res.status(204);
  session_headers(res, r.name, lease->id(), lease->size());
}

void registry_api::patch_upload(const sdk::request& req, sdk::response& res, const oci::target& r) {
  auto lease = uploads_.acquire(r.reference, r.name);
  if (!lease) {
    if (lease.code() != errc::not_found) return storage_failure(res, lease.error());
    return upload_unknown(res, r);
  }
  const std::uint64_t start = lease->size();
  std::optional<byte_range> range;
  if (const auto h = req.header("Content-Range")) {
    range = parse_content_range(*h);
    const std::int64_t length = req.content_length();
    const bool length_mismatch = range && length >= 0 && static_cast<std::uint64_t>(length) != range->length();
    if (!range || range->first != start || length_mismatch) {
      // Out of order (or a retry of a chunk already received): the session is unchanged and
      // the client learns where it stands from the headers (or a GET).
      res.status(416);
      session_headers(res, r.name, lease->id(), start);
      return res.send("application/json",
                      sdk::oci_error_body("BLOB_UPLOAD_INVALID",
                                          "the chunk must start at byte " + std::to_string(start) +
                                              " and match its Content-Length (got Content-Range \"" +
                                              std::string(*h) + "\")"));
    }
  }
  // A chunk that announced its range is kept whole or dropped whole, so a retry of the same
  // range fits: noted in the session first, so that a kill in the middle drops it too.
  if (range) {
    if (auto st = lease->begin_chunk(range->last + 1); !st) return storage_failure(res, st.error());
  }
  const body_outcome body = stream_body(req, *lease);
  if (range && (body.write_error || body.received != range->length())) {
    if (auto st = lease->truncate(start); !st) return storage_failure(res, st.error());
  }
  if (body.write_error) return storage_failure(res, *body.write_error);
  if (auto st = lease->sync(); !st) return storage_failure(res, st.error());
  if (auto st = lease->end_chunk(); !st) return storage_failure(res, st.error());
  if (!body.complete || (range && body.received != range->length())) {
    res.status(400);
    session_headers(res, r.name, lease->id(), lease->size());
    return res.send("application/json",
                    sdk::oci_error_body("BLOB_UPLOAD_INVALID", "the chunk was cut short after " +
                                                                   std::to_string(body.received) + " bytes"));
  }
  res.status(202);
  session_headers(res, r.name, lease->id(), lease->size());
}

void registry_api::put_upload(const sdk::request& req, sdk::response& res, const oci::target& r) {
  const digest_param dp = read_digest_param(req);
  if (!dp.present) return digest_invalid(res, "", "the digest query parameter is required to complete an upload");
  if (!dp.value) return digest_invalid(res, dp.text, "\"" + dp.text + "\" is not a digest registryd can verify");
  auto lease = uploads_.acquire(r.reference, r.name);
  if (!lease) {
    if (lease.code() != errc::not_found) return storage_failure(res, lease.error());
    return upload_unknown(res, r);
  }
  const std::uint64_t start = lease->size();
  std::optional<byte_range> range;
  if (const auto h = req.header("Content-Range")) {
    range = parse_content_range(*h);
    if (!range || range->first != start) {
      res.status(416);
      session_headers(res, r.name, lease->id(), start);
      return res.send("application/json",
                      sdk::oci_error_body("BLOB_UPLOAD_INVALID",
                                          "the final chunk must start at byte " + std::to_string(start)));
    }
  }
  if (range) {
    if (auto st = lease->begin_chunk(range->last + 1); !st) return storage_failure(res, st.error());
  }
  const body_outcome body = stream_body(req, *lease);
  if (range && (body.write_error || body.received != range->length())) (void)lease->truncate(start);
  if (body.write_error) return storage_failure(res, *body.write_error);
  if (!body.complete || (range && body.received != range->length())) {
    (void)lease->sync();
    if (auto st = lease->end_chunk(); !st) return storage_failure(res, st.error());
    res.status(400);
    session_headers(res, r.name, lease->id(), lease->size());
    return res.send("application/json",
                    sdk::oci_error_body("BLOB_UPLOAD_INVALID", "the final chunk was cut short after " +
                                                                   std::to_string(body.received) + " bytes"));
  }
  auto info = lease->commit(*dp.value);
  if (!info) {
    if (info.code() == errc::digest_mismatch) {
      ++counters_.digest_mismatches;
      return digest_invalid(res, dp.text, info.error_message());
    }
    return storage_failure(res, info.error());
  }
  auto st = repos_.link_blob(r.name, *dp.value);
  if (!st) return storage_failure(res, st.error());
  ++counters_.blobs_pushed;
  counters_.blob_bytes_pushed += info->size;
  blob_created(res, r.name, *dp.value);
}

void registry_api::cancel_upload(const sdk::request&, sdk::response& res, const oci::target& r) {
  auto lease = uploads_.acquire(r.reference, r.name);
  if (!lease) {
    if (lease.code() != errc::not_found) return storage_failure(res, lease.error());
    return upload_unknown(res, r);
  }
  if (auto st = lease->cancel(); !st) return storage_failure(res, st.error());
  res.status(204);
  res.header("Content-Length", "0");
}

}  // namespace registryd::local
