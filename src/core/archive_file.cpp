#include "core/archive_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>

namespace orch {

namespace {

std::string errno_text() { return std::strerror(errno); }

void fsync_path(const std::string &path, int flags) {
  int fd = open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open \"" + path + "\" to sync it: " + errno_text());
  int rc = fsync(fd);
  int saved = errno;
  close(fd);
  errno = saved;
  if (rc != 0) throw std::runtime_error("cannot sync \"" + path + "\": " + errno_text());
}

}  // namespace

ArchiveFile::ArchiveFile(const std::string &directory, const std::string &name)
    : directory_(directory), path_(directory + "/" + name), partial_(path_ + ".partial") {
  // Never over a finished archive; O_EXCL and O_NOFOLLOW: never another
  // file, never through a link.
  struct stat existing;
  if (lstat(path_.c_str(), &existing) == 0) {
    errno = EEXIST;
    throw std::runtime_error("cannot create \"" + path_ + "\": " + errno_text());
  }
  fd_ = open(partial_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd_ < 0) throw std::runtime_error("cannot create \"" + partial_ + "\": " + errno_text());
  // zlib closes the descriptor it is given; ours stays open for fsync.
  int gz_fd = dup(fd_);
  if (gz_fd < 0 || (gz_ = gzdopen(gz_fd, "wb")) == nullptr) {
    int saved = errno;
    if (gz_fd >= 0) close(gz_fd);
    close(fd_);
    unlink(partial_.c_str());  // (no destructor runs for a constructor that throws)
    errno = saved;
    fail("cannot start compressing");
  }
}

ArchiveFile::~ArchiveFile() {
  if (gz_ != nullptr) gzclose(static_cast<gzFile>(gz_));
  if (fd_ >= 0) close(fd_);
  if (!finished_) unlink(partial_.c_str());
}

void ArchiveFile::fail(const std::string &what) {
  throw std::runtime_error(what + " \"" + partial_ + "\": " + errno_text());
}

void ArchiveFile::write_line(const std::string &line) {
  auto *gz = static_cast<gzFile>(gz_);
  if ((!line.empty() && gzwrite(gz, line.data(), static_cast<unsigned>(line.size())) == 0) || gzputc(gz, '\n') < 0)
    fail("cannot write");
}

std::int64_t ArchiveFile::finish() {
  int rc = gzclose(static_cast<gzFile>(gz_));
  gz_ = nullptr;
  if (rc != Z_OK) fail("cannot write");
  if (fsync(fd_) != 0) fail("cannot sync");
  struct stat info;
  if (fstat(fd_, &info) != 0) fail("cannot stat");
  close(fd_);
  fd_ = -1;
  // link() rather than rename(): it fails instead of replacing a file
  // that appeared under the final name meanwhile.
  if (link(partial_.c_str(), path_.c_str()) != 0) fail("cannot name");
  unlink(partial_.c_str());
  finished_ = true;
  // The file's name is durable only once its directory is.
  fsync_path(directory_, O_RDONLY | O_DIRECTORY);
  return static_cast<std::int64_t>(info.st_size);
}

int ArchiveFile::remove_partials(const std::string &directory, const std::string &prefix, long idle_seconds) {
  DIR *dir = opendir(directory.c_str());
  if (dir == nullptr) return 0;
  const std::string suffix = ".partial";
  int removed = 0;
  time_t now = time(nullptr);
  while (dirent *entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    std::string path = directory + "/" + name;
    struct stat info;
    if (lstat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) && now - info.st_mtime >= idle_seconds &&
        unlink(path.c_str()) == 0)
      ++removed;
  }
  closedir(dir);
  return removed;
}

}  // namespace orch
