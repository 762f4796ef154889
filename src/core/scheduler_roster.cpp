#include "core/scheduler_roster.hpp"

#include <algorithm>
#include <set>

namespace orch {

namespace {

// 1 s, 2 s, 4 s ... up to kLastRetry.
std::chrono::milliseconds retry_delay(int failures) {
  auto delay = SchedulerRoster::kFirstRetry;
  for (int i = 1; i < failures && delay < SchedulerRoster::kLastRetry; ++i) delay *= 2;
  return std::min(delay, SchedulerRoster::kLastRetry);
}

}  // namespace

void SchedulerRoster::want(Entry &entry, Time at) {
  entry.state = State::Wanted;
  entry.start_at = at;
}

void SchedulerRoster::databases_found(const std::vector<DatabaseId> &connectable, Time now) {
  std::set<DatabaseId> found(connectable.begin(), connectable.end());
  for (auto it = entries_.begin(); it != entries_.end();) {
    // A running scheduler is watched until it exits, whatever the catalog says.
    bool gone = found.count(it->first) == 0 && it->second.state != State::Running && !it->second.held;
    it = gone ? entries_.erase(it) : std::next(it);
  }
  for (DatabaseId database : found)
    if (entries_.count(database) == 0) want(entries_[database], now);
}

void SchedulerRoster::extension_changed(DatabaseId database, Time now) {
  Entry &entry = entries_[database];
  if (entry.state == State::Running) {
    entry.start_again = true;
    return;
  }
  entry.failures = 0;
  want(entry, now);
}

void SchedulerRoster::not_installed(DatabaseId database) {
  auto it = entries_.find(database);
  if (it != entries_.end() && it->second.state == State::Running) it->second.exit_expected = true;
}

void SchedulerRoster::hold(DatabaseId database) {
  Entry &entry = entries_[database];
  entry.held = true;
  if (entry.state != State::Running) entry.state = State::Idle;
}

void SchedulerRoster::release(DatabaseId database, Time now) {
  auto it = entries_.find(database);
  if (it == entries_.end()) return;
  it->second.held = false;
  // The statement may have failed, leaving the database as it was: probe it
  // again (a dropped one is forgotten at the next catalog read).
  if (it->second.state != State::Running) {
    it->second.failures = 0;
    want(it->second, now);
  }
}

void SchedulerRoster::started(DatabaseId database, Time now) {
  Entry &entry = entries_[database];
  entry.state = State::Running;
  entry.started_at = now;
  entry.exit_expected = false;
  entry.start_again = false;
}

void SchedulerRoster::start_failed(DatabaseId database, Time now) {
  Entry &entry = entries_[database];
  entry.failures += 1;
  want(entry, now + retry_delay(entry.failures));
}

void SchedulerRoster::exited(DatabaseId database, Time now) {
  auto it = entries_.find(database);
  if (it == entries_.end() || it->second.state != State::Running) return;
  Entry &entry = it->second;
  if (entry.held) {
    entry.state = State::Idle;
  } else if (entry.start_again) {
    entry.failures = 0;
    want(entry, now);
  } else if (entry.exit_expected) {
    entry.failures = 0;
    entry.state = State::Idle;
  } else {
    if (now - entry.started_at >= kLastRetry) entry.failures = 0;  // it ran a good while: a new failure
    entry.failures += 1;
    want(entry, now + retry_delay(entry.failures));
  }
}

std::vector<DatabaseId> SchedulerRoster::due(Time now) const {
  std::vector<DatabaseId> databases;
  for (const auto &[database, entry] : entries_)
    if (entry.state == State::Wanted && !entry.held && entry.start_at <= now) databases.push_back(database);
  return databases;
}

std::optional<SchedulerRoster::Time> SchedulerRoster::next_due() const {
  std::optional<Time> next;
  for (const auto &[database, entry] : entries_)
    if (entry.state == State::Wanted && !entry.held && (!next || entry.start_at < *next)) next = entry.start_at;
  return next;
}

std::vector<DatabaseId> SchedulerRoster::running() const {
  std::vector<DatabaseId> databases;
  for (const auto &[database, entry] : entries_)
    if (entry.state == State::Running) databases.push_back(database);
  return databases;
}

}  // namespace orch
