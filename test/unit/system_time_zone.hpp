// Test-only TimeZoneRules: the system's zoneinfo through glibc (TZ set,
// localtime_r, tm_gmtoff), and fixed offsets. Not thread-safe: it switches
// the process's TZ, which is fine in a single-threaded test binary.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <string>
#include <unordered_map>

#include "core/time_zone_rules.hpp"

namespace orch_test {

class SystemTimeZone : public orch::TimeZoneRules {
 public:
  explicit SystemTimeZone(std::string name) : name_(std::move(name)) {}

  // Whether the zoneinfo file exists; glibc silently uses UTC when it does not.
  static bool available(const std::string &name) {
    const char *dir = std::getenv("TZDIR");
    std::string path = std::string(dir && *dir ? dir : "/usr/share/zoneinfo") + "/" + name;
    struct stat st;
    return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  }

  const std::string &name() const { return name_; }

  // Memoised per 3-hour block (glibc's conversion is slow enough to dominate
  // the sweep test): a block whose two ends agree is taken as constant, else
  // its one transition is found by bisection. Zones change their offset at
  // most once in 3 hours; glibc_offset_at() gives the uncached answer.
  long utc_offset_at(std::int64_t utc_seconds) const override {
    constexpr std::int64_t kBlock = 3 * 3600;
    std::int64_t block = utc_seconds / kBlock - (utc_seconds % kBlock < 0 ? 1 : 0);
    auto it = cache_.find(block);
    if (it == cache_.end()) {
      Block b;
      std::int64_t lo = block * kBlock, hi = lo + kBlock - 1;
      b.before = glibc_offset_at(lo);
      b.after = glibc_offset_at(hi);
      b.change = hi + 1;
      if (b.before != b.after) {
        while (hi - lo > 1) {
          std::int64_t mid = lo + (hi - lo) / 2;
          (glibc_offset_at(mid) == b.before ? lo : hi) = mid;
        }
        b.change = hi;
      }
      it = cache_.emplace(block, b).first;
    }
    return utc_seconds < it->second.change ? it->second.before : it->second.after;
  }

  long glibc_offset_at(std::int64_t utc_seconds) const {
    activate();
    std::time_t t = static_cast<std::time_t>(utc_seconds);
    std::tm tm{};
    if (localtime_r(&t, &tm) == nullptr) return 0;
    return tm.tm_gmtoff;
  }

 private:
  struct Block {
    long before, after;
    std::int64_t change;  // first instant with `after`
  };
  mutable std::unordered_map<std::int64_t, Block> cache_;

  void activate() const {
    static std::string current;
    if (current != name_) {
      setenv("TZ", name_.c_str(), 1);
      tzset();
      current = name_;
    }
  }

  std::string name_;
};

class FixedOffsetZone : public orch::TimeZoneRules {
 public:
  explicit FixedOffsetZone(long seconds_east) : offset_(seconds_east) {}
  long utc_offset_at(std::int64_t) const override { return offset_; }

 private:
  long offset_;
};

}  // namespace orch_test
