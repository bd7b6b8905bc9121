// The entry point of packages-proxy.so.
#include "packages_proxy.hpp"

REGISTRYD_PLUGIN(registryd::packages::packages_proxy, "PackagesProxy", "1.0.0")
