// The host's names for the one result type (registryd/result.hpp, shared with the SDK).
#pragma once

#include <registryd/result.hpp>

namespace registryd::util {

using registryd::done;
using registryd::error;
using registryd::ok;
using registryd::result;
using registryd::status;

}  // namespace registryd::util
