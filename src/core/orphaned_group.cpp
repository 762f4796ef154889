#include "core/orphaned_group.hpp"

#include <fstream>
#include <iterator>
#include <sstream>

#include "core/child_supervisor.hpp"

namespace orch {

namespace {

enum class Leader { Gone, Ours, NotOurs };

Leader inspect_leader(int pgid, const std::string &marker) {
  std::string proc = "/proc/" + std::to_string(pgid);
  std::ifstream stat(proc + "/stat");
  if (!stat) return Leader::Gone;
  std::string line;
  std::getline(stat, line);
  // "pid (comm) S ...": comm may hold spaces and parentheses; the state follows the last ')'.
  auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return Leader::Gone;
  if (line[close + 2] == 'Z') return Leader::Gone;  // exited; its pid stays reserved until reaped
  std::ifstream environ(proc + "/environ", std::ios::binary);
  if (!environ) return Leader::NotOurs;  // not even readable by us
  std::string entries((std::istreambuf_iterator<char>(environ)), std::istreambuf_iterator<char>());
  std::istringstream split(entries);
  for (std::string entry; std::getline(split, entry, '\0');)
    if (entry == marker) return Leader::Ours;
  return Leader::NotOurs;
}

}  // namespace

bool kill_orphaned_group(int pgid, const std::string &marker) {
  if (pgid <= 1) return false;
  if (inspect_leader(pgid, marker) == Leader::NotOurs) return false;
  return kill_process_group(pgid);
}

}  // namespace orch
