// The entry point of proxy.so.
#include "proxy_mode.hpp"

REGISTRYD_PLUGIN(registryd::proxy::proxy_mode, "Proxy", "1.0.0")
