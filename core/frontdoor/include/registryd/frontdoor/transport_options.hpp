// The front door's transport settings are host settings: one definition, in config.
#pragma once

#include <registryd/config/http_settings.hpp>

namespace registryd::frontdoor {

using transport_options = config::http_settings;

}  // namespace registryd::frontdoor
