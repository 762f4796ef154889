// Which databases the launcher keeps a scheduler in (TimescaleDB's model: one
// scheduler per database that has the extension). The launcher reads the
// catalog and messages, and starts workers; this class alone decides whom
// to start when, so the rules are unit-tested without a server:
//
// - every database that allows connections is probed once (its scheduler
//   exits, saying so, when the extension is not installed there);
// - CREATE or ALTER EXTENSION in a database asks for its scheduler again;
// - a scheduler that exits without saying why failed: it is started again
//   after a delay that doubles per failure (1 s up to 1 min, reset after a
//   minute of running), so one failing database costs the others nothing;
// - a database being dropped or renamed gets no scheduler until that ends.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "core/cpp_only.hpp"

namespace orch {

using DatabaseId = std::uint32_t;

class SchedulerRoster {
 public:
  using Time = std::chrono::steady_clock::time_point;

  static constexpr std::chrono::milliseconds kFirstRetry{1000};
  static constexpr std::chrono::milliseconds kLastRetry{60000};

  // The databases that allow connections now: new ones are probed,
  // vanished ones forgotten.
  void databases_found(const std::vector<DatabaseId> &connectable, Time now);

  // CREATE / ALTER EXTENSION committed there: (re)start its scheduler.
  void extension_changed(DatabaseId database, Time now);
  // Its scheduler found no extension (or an older version) and is exiting.
  void not_installed(DatabaseId database);
  // DROP / ALTER DATABASE needs it without connections, then it ends.
  void hold(DatabaseId database);
  void release(DatabaseId database, Time now);

  // The launcher started (or failed to start) a scheduler for it.
  void started(DatabaseId database, Time now);
  void start_failed(DatabaseId database, Time now);
  // Its scheduler is no longer running.
  void exited(DatabaseId database, Time now);

  // Databases whose scheduler should start now.
  std::vector<DatabaseId> due(Time now) const;
  // When the next delayed start is due, if any.
  std::optional<Time> next_due() const;
  // Databases whose scheduler is running (the launcher watches these).
  std::vector<DatabaseId> running() const;

 private:
  enum class State { Wanted, Running, Idle };
  struct Entry {
    State state = State::Wanted;
    Time start_at{};           // Wanted: not before
    Time started_at{};         // Running: since
    int failures = 0;          // in a row
    bool held = false;         // being dropped or renamed
    bool exit_expected = false;  // Running: it said the extension is absent
    bool start_again = false;    // Running: the extension changed meanwhile
  };
  void want(Entry &entry, Time at);

  std::map<DatabaseId, Entry> entries_;
};

}  // namespace orch
