// Cron schedules in PostgreSQL's own time zone database.
#pragma once

#include <string>

namespace orch::pg {

// Why `name` is not a usable time zone, or "" when it is.
std::string time_zone_problem(const std::string &name);

}  // namespace orch::pg
