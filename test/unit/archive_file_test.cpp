#include "core/archive_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

namespace orch {
namespace {

class ArchiveFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/archive_file_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { (void)std::system(("rm -rf " + dir_).c_str()); }

  static std::string read_gzip(const std::string &path) {
    gzFile gz = gzopen(path.c_str(), "rb");
    std::string text;
    char buffer[4096];
    int n;
    while ((n = gzread(gz, buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<std::size_t>(n));
    gzclose(gz);
    return text;
  }
  static bool exists(const std::string &path) {
    struct stat info;
    return lstat(path.c_str(), &info) == 0;
  }

  std::string dir_;
};

TEST_F(ArchiveFileTest, WritesGzipJsonLinesOwnerOnly) {
  ArchiveFile file(dir_, "runs.jsonl.gz");
  file.write_line(R"({"id": 1})");
  file.write_line(R"({"id": 2, "text": "é\n"})");
  std::int64_t bytes = file.finish();
  struct stat info;
  ASSERT_EQ(stat(file.path().c_str(), &info), 0);
  EXPECT_EQ(bytes, info.st_size);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_EQ(read_gzip(file.path()), "{\"id\": 1}\n{\"id\": 2, \"text\": \"é\\n\"}\n");
}

TEST_F(ArchiveFileTest, AnUnfinishedFileIsRemoved) {
  {
    ArchiveFile file(dir_, "partial.jsonl.gz");
    file.write_line("{}");
    EXPECT_TRUE(exists(dir_ + "/partial.jsonl.gz.partial"));  // not under its name until finished
    EXPECT_FALSE(exists(dir_ + "/partial.jsonl.gz"));
  }
  EXPECT_FALSE(exists(dir_ + "/partial.jsonl.gz.partial"));
  EXPECT_FALSE(exists(dir_ + "/partial.jsonl.gz"));
}

// What a crash leaves: only this database's, only when idle, only files.
TEST_F(ArchiveFileTest, LeftoverPartialsAreRemoved) {
  for (const char *name : {"pg_orch_db_runs_1.jsonl.gz.partial", "pg_orch_db_tasks_2.jsonl.gz.partial",
                           "pg_orch_other_runs_1.jsonl.gz.partial", "pg_orch_db_runs_0.jsonl.gz"})
    std::ofstream(dir_ + "/" + name) << "x";
  ASSERT_EQ(mkdir((dir_ + "/pg_orch_db_dir.partial").c_str(), 0700), 0);
  EXPECT_EQ(ArchiveFile::remove_partials(dir_, "pg_orch_db_", 3600), 0);  // written just now: maybe in progress
  EXPECT_EQ(ArchiveFile::remove_partials(dir_, "pg_orch_db_", 0), 2);
  EXPECT_FALSE(exists(dir_ + "/pg_orch_db_runs_1.jsonl.gz.partial"));
  EXPECT_TRUE(exists(dir_ + "/pg_orch_other_runs_1.jsonl.gz.partial"));
  EXPECT_TRUE(exists(dir_ + "/pg_orch_db_runs_0.jsonl.gz"));
  EXPECT_TRUE(exists(dir_ + "/pg_orch_db_dir.partial"));
  EXPECT_EQ(ArchiveFile::remove_partials("/nonexistent", "pg_orch_db_", 0), 0);
}

TEST_F(ArchiveFileTest, NeverWritesOverAFileOrThroughALink) {
  std::ofstream(dir_ + "/taken.jsonl.gz") << "keep";
  EXPECT_THROW(ArchiveFile(dir_, "taken.jsonl.gz"), std::runtime_error);
  std::ifstream kept(dir_ + "/taken.jsonl.gz");
  std::string text;
  kept >> text;
  EXPECT_EQ(text, "keep");  // and the failed attempt did not remove it
  ASSERT_EQ(symlink("/tmp/should_not_exist_archive", (dir_ + "/link.jsonl.gz").c_str()), 0);
  EXPECT_THROW(ArchiveFile(dir_, "link.jsonl.gz"), std::runtime_error);
  EXPECT_FALSE(exists("/tmp/should_not_exist_archive"));
}

TEST_F(ArchiveFileTest, SaysWhyItCannotCreate) {
  try {
    ArchiveFile file("/dev/null", "x.jsonl.gz");
    FAIL() << "created a file under /dev/null";
  } catch (const std::runtime_error &e) {
    EXPECT_EQ(std::string(e.what()), "cannot create \"/dev/null/x.jsonl.gz.partial\": Not a directory");
  }
}

}  // namespace
}  // namespace orch
