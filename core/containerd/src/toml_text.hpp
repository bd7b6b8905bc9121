// The little TOML the renderer writes, spelled by hand because toml++ 3.3 cannot keep the order
// of [host."..."] tables, and containerd tries mirrors in file order. Unit tests read every file
// back with toml++.
#pragma once

#include <string>
#include <string_view>

namespace registryd::containerd {

// A TOML basic string: "..." with quotes, backslashes and control characters escaped.
// The input must be valid UTF-8 (the description parser checks it).
std::string toml_string(std::string_view s);

}  // namespace registryd::containerd
