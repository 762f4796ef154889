#include "core/orphaned_group.hpp"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <iterator>
#include <sstream>

#include "core/child_supervisor.hpp"

namespace orch {

namespace {

struct ProcStat {
  char state;
  int pgid;
};

// "pid (comm) S ppid pgrp ...": comm may hold spaces and parentheses, so
// the fields are counted from the last ')'.
bool read_stat(int pid, ProcStat &stat) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!file || !std::getline(file, line)) return false;
  auto close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream fields(line.substr(close + 1));
  int ppid;
  return static_cast<bool>(fields >> stat.state >> ppid >> stat.pgid);
}

bool environment_has(int pid, const std::string &marker) {
  std::ifstream environ("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  if (!environ) return false;  // not ours to read, so not ours
  std::string entries((std::istreambuf_iterator<char>(environ)), std::istreambuf_iterator<char>());
  std::istringstream split(entries);
  for (std::string entry; std::getline(split, entry, '\0');)
    if (entry == marker) return true;
  return false;
}

enum class Leader { Gone, Ours, NotOurs };

Leader inspect_leader(int pgid, const std::string &marker) {
  ProcStat stat;
  // A zombie has exited; its pid stays reserved until reaped.
  if (!read_stat(pgid, stat) || stat.state == 'Z') return Leader::Gone;
  return environment_has(pgid, marker) ? Leader::Ours : Leader::NotOurs;
}

}  // namespace

bool kill_orphaned_group(int pgid, const std::string &marker) {
  if (pgid <= 1) return false;
  if (inspect_leader(pgid, marker) == Leader::NotOurs) return false;
  return kill_process_group(pgid);
}

int kill_marked_processes(const std::string &marker) {
  DIR *proc = opendir("/proc");
  if (proc == nullptr) return 0;
  int own_group = getpgrp();
  int matched = 0;
  while (dirent *entry = readdir(proc)) {
    if (!std::isdigit(static_cast<unsigned char>(entry->d_name[0]))) continue;
    int pid = std::stoi(entry->d_name);
    ProcStat stat;
    if (!read_stat(pid, stat) || stat.state == 'Z' || !environment_has(pid, marker)) continue;
    ++matched;
    if (stat.pgid > 1 && stat.pgid != own_group) kill(-stat.pgid, SIGKILL);
    if (pid != getpid()) kill(pid, SIGKILL);
  }
  closedir(proc);
  return matched;
}

}  // namespace orch
