// The SDK's names for the one result type (registryd/result.hpp, shared with the host).
#pragma once

#include <registryd/result.hpp>

namespace registryd::oci {

using registryd::done;
using registryd::error;
using registryd::fail;
using registryd::ok;
using registryd::result;
using registryd::status;

}  // namespace registryd::oci
