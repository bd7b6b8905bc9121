// The entry point of local.so.
#include "local_mode.hpp"

REGISTRYD_PLUGIN(registryd::local::local_mode, "Local", "1.0.0")
