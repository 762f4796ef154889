#include "core/error.hpp"

#include <nlohmann/json.hpp>

namespace orch {

std::string quote(const std::string &text) {
  constexpr std::size_t kMax = 100;
  std::string shown = text.size() > kMax ? text.substr(0, kMax) + "..." : text;
  return nlohmann::json(shown).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace orch
