// Errors the core reports. The PostgreSQL glue turns InvalidInput into an
// ERROR with SQLSTATE invalid_parameter_value (22023) and any other
// exception into an internal error, so messages here are written for users:
// lower case, no trailing period, naming the bad field.
#pragma once

#include <stdexcept>
#include <string>

#include "core/cpp_only.hpp"

namespace orch {

class InvalidInput : public std::runtime_error {
 public:
  explicit InvalidInput(const std::string &message) : std::runtime_error(message) {}
};

// A user's value as it appears in a message: in double quotes with JSON
// escapes (so a newline or a quote cannot garble the message), and cut
// after 100 bytes.
std::string quote(const std::string &text);

}  // namespace orch
