// The entry point of unmanaged.so.
#include "unmanaged_mode.hpp"

REGISTRYD_PLUGIN(registryd::unmanaged::unmanaged_mode, "Unmanaged", "1.0.0")
