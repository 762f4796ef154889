// The time zone rules a cron schedule is evaluated in. The core knows no
// time zone database: the PostgreSQL glue implements this interface with
// PostgreSQL's own (pg_localtime().tm_gmtoff), the unit tests with the
// system's zoneinfo and with fixed offsets.
#pragma once

#include <cstdint>

#include "core/cpp_only.hpp"

namespace orch {

class TimeZoneRules {
 public:
  virtual ~TimeZoneRules() = default;

  // Seconds east of UTC in force at the instant `utc_seconds` (seconds since
  // the Unix epoch): 3600 for CET, -18000 for EST. Must not throw.
  virtual long utc_offset_at(std::int64_t utc_seconds) const = 0;
};

class UtcTimeZone : public TimeZoneRules {
 public:
  long utc_offset_at(std::int64_t) const override { return 0; }
};

}  // namespace orch
