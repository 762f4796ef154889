// A command's output is bytes; a text column holds valid UTF-8 without NUL.
#pragma once

#include <string>
#include <string_view>

#include "core/cpp_only.hpp"

namespace orch {

// Replaces every NUL byte and every invalid or truncated UTF-8 sequence with
// U+FFFD, so captured output (whose kept tail may start mid-character) can
// always be stored.
std::string to_database_text(std::string_view bytes);

}  // namespace orch
