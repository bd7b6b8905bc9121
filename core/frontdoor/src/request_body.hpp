// How the front door tells whether a request carries a body at all.
#pragma once

#include <httplib.h>

namespace registryd::frontdoor {

// A request with neither Content-Length nor Transfer-Encoding has no body (RFC 9112 6.3), but
// httplib 0.11 would read one until the client closes the connection: never call the
// ContentReader of such a request.
inline bool has_framed_body(const httplib::Request& req) {
  return req.has_header("Content-Length") || req.has_header("Transfer-Encoding");
}

}  // namespace registryd::frontdoor
