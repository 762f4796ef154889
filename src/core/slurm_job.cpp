#include "core/slurm_job.hpp"

#include <cmath>
#include <regex>
#include <sstream>

#include "core/error.hpp"

namespace orch {
namespace {

using json = nlohmann::json;

// "3:0" -> code 3, signal 0.
void parse_exit_code(const std::string &text, JobState &state) {
  std::size_t colon = text.find(':');
  try {
    state.exit_code = std::stoi(text.substr(0, colon));
    state.signal = colon == std::string::npos ? 0 : std::stoi(text.substr(colon + 1));
  } catch (const std::exception &) {
    state.exit_code = -1;
  }
}

}  // namespace

json parse_slurm_options(const json &options) {
  if (!options.is_object()) throw InvalidInput("\"slurm\" must be an object with \"partition\", \"cpus\", \"mem\", \"time\"");
  for (const auto &item : options.items()) {
    const std::string &key = item.key();
    const json &value = item.value();
    if (key == "partition") {
      if (!value.is_string() || !std::regex_match(value.get<std::string>(), std::regex("[A-Za-z0-9_.-]{1,64}")))
        throw InvalidInput("\"slurm\": \"partition\" must be a partition name");
    } else if (key == "cpus") {
      double d = value.is_number() ? value.get<double>() : 0;
      if (!(d >= 1 && d <= 4096) || d != std::floor(d))
        throw InvalidInput("\"slurm\": \"cpus\" must be an integer from 1 to 4096");
    } else if (key == "mem") {
      if (!value.is_string() || !std::regex_match(value.get<std::string>(), std::regex("[0-9]{1,9}[KMGT]?")))
        throw InvalidInput("\"slurm\": \"mem\" must be a size such as \"512M\" or \"4G\"");
    } else if (key == "time") {
      // Slurm's forms: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.
      if (!value.is_string() ||
          !std::regex_match(value.get<std::string>(),
                            std::regex("[0-9]{1,6}(:[0-9]{1,2}){0,2}|[0-9]{1,4}-[0-9]{1,2}(:[0-9]{1,2}){0,2}")))
        throw InvalidInput("\"slurm\": \"time\" must be a Slurm time limit such as \"30\", \"2:00:00\" or \"1-00:00:00\"");
    } else {
      throw InvalidInput("\"slurm\" has unknown key " + quote(key));
    }
  }
  return options;
}

std::string shell_quote(const std::string &text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string job_script(const std::vector<std::string> &env, const std::vector<std::string> &argv) {
  std::string script = "#!/bin/sh\n";
  for (const std::string &entry : env) script += "export " + shell_quote(entry) + "\n";
  script += "exec";
  for (const std::string &arg : argv) script += " " + shell_quote(arg);
  return script + "\n";
}

std::vector<std::string> sbatch_arguments(const json &options, const std::string &job_name,
                                          const std::string &working_directory, const std::string &output_file,
                                          const std::string &script) {
  // --export=NONE: the script sets the task's whole environment itself.
  std::vector<std::string> argv = {"sbatch", "--parsable", "--export=NONE", "--job-name=" + job_name,
                                   "--chdir=" + working_directory, "--output=" + output_file};
  if (options.contains("partition")) argv.push_back("--partition=" + options["partition"].get<std::string>());
  if (options.contains("cpus")) argv.push_back("--cpus-per-task=" + std::to_string(options["cpus"].get<int>()));
  if (options.contains("mem")) argv.push_back("--mem=" + options["mem"].get<std::string>());
  if (options.contains("time")) argv.push_back("--time=" + options["time"].get<std::string>());
  argv.push_back(script);
  return argv;
}

std::string submitted_job_id(const std::string &output) {
  std::smatch match;
  if (std::regex_search(output, match, std::regex("^([0-9]+)(;[^\\n]*)?\\s*$"))) return match[1];
  return "";
}

bool JobState::finished() const {
  return state != "PENDING" && state != "RUNNING" && state != "CONFIGURING" && state != "COMPLETING" &&
         state != "SUSPENDED" && state != "REQUEUED" && state != "RESIZING" && state != "SIGNALING" &&
         state != "STAGE_OUT" && state != "REQUEUE_HOLD" && state != "REQUEUE_FED" && state != "STOPPED" &&
         state != "RESV_DEL_HOLD";
}

std::optional<JobState> scontrol_job_state(const std::string &output) {
  std::smatch state_match, exit_match;
  if (!std::regex_search(output, state_match, std::regex("(^|\\s)JobState=([A-Z_]+)"))) return std::nullopt;
  JobState state;
  state.state = state_match[2];
  if (std::regex_search(output, exit_match, std::regex("(^|\\s)ExitCode=([0-9]+:[0-9]+)")))
    parse_exit_code(exit_match[2], state);
  return state;
}

std::optional<JobState> sacct_job_state(const std::string &output, const std::string &job_id) {
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::string> fields;
    std::istringstream parts(line);
    for (std::string field; std::getline(parts, field, '|');) fields.push_back(field);
    if (fields.size() < 3 || fields[0] != job_id) continue;
    JobState state;
    state.state = fields[1].substr(0, fields[1].find(' '));
    parse_exit_code(fields[2], state);
    return state;
  }
  return std::nullopt;
}

}  // namespace orch
