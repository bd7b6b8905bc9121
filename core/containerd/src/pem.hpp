// PEM certificate bundles as the containerd renderer writes them.
#pragma once

#include <registryd/util/result.hpp>

#include <string>
#include <string_view>

namespace registryd::containerd {

// Parses every certificate in `pem` and re-encodes them, so the file written to the nodes holds
// certificates only, with one spelling per content (stable file names and config versions).
// Fails when the text holds no certificate or something that is not one.
util::result<std::string> canonical_pem_certificates(std::string_view pem);

}  // namespace registryd::containerd
