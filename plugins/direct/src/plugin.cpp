// The entry point of direct.so.
#include "direct_mode.hpp"

REGISTRYD_PLUGIN(registryd::direct::direct_mode, "Direct", "1.0.0")
