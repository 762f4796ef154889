# PGXS build of the extension: the pure C++ core (src/core) and the
# PostgreSQL glue (src/pg) link into one pg_orch.so; the install script is
# joined from sql/ (one file per concept, in name order). Unit tests and
# fuzzers are built by CMake (see CMakeLists.txt); `make installcheck` runs
# the pg_regress suite in test/sql against a running server with
# shared_preload_libraries = 'pg_orch', as ./scripts/test sets up.
EXTENSION = pg_orch
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" pg_orch.control)
DATA_built = sql/pg_orch--$(EXTVERSION).sql
# Released install scripts are frozen; each release adds the upgrade script
# from the one before (README: "Upgrades").
DATA = $(wildcard sql/released/*.sql) $(wildcard sql/upgrades/*.sql)
MODULE_big = pg_orch

CORE_SRCS = $(wildcard src/core/*.cpp)
PG_SRCS = $(wildcard src/pg/*.cpp)
OBJS = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

REGRESS = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --load-extension=pg_orch

PG_CONFIG ?= pg_config
PG_CXXFLAGS = -std=c++17 -fPIC -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-register -Isrc
# The scheduler runs only where the installed extension is this version
# (rebuilt when the version changes).
PG_CXXFLAGS += -DORCH_VERSION='"$(EXTVERSION)"'
# CI builds with WERROR=1: the build stays free of warnings.
ifeq ($(WERROR),1)
PG_CXXFLAGS += -Werror
endif
SHLIB_LINK = -lstdc++ -lz -lcurl

# No LLVM bitcode for JIT inlining: it would need clang++ at build time and
# buys nothing for a worker that mostly waits on children.
override with_llvm = no

# Objects depend on the headers they include (a changed struct in a header
# must rebuild every file that uses it).
override autodepend = yes

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

src/pg/scheduler.o: pg_orch.control

SQL_SRCS = $(sort $(filter-out sql/pg_orch--%,$(wildcard sql/*.sql)))
sql/pg_orch--$(EXTVERSION).sql: $(SQL_SRCS)
	cat $^ > $@
