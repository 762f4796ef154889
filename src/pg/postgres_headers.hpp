// The one place the glue includes PostgreSQL's C headers. Only src/pg/*.cpp
// include this file; src/core/ never does (core/cpp_only.hpp enforces it).
#pragma once

extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/dependency.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

// Version shims: the glue builds against PostgreSQL 15 (Debian 12) and 17
// (Debian 13). Each hides one API difference behind a helper.

namespace orch::pg {
// A WaitEventSet for one wait (17 ties it to a resource owner, which closes
// its descriptor on error, instead of a memory context).
inline WaitEventSet *create_wait_event_set(int events) {
#if PG_VERSION_NUM >= 170000
  return CreateWaitEventSet(CurrentResourceOwner, events);
#else
  return CreateWaitEventSet(CurrentMemoryContext, events);
#endif
}

// The sequence of identity column `attnum` (17 takes the relation).
inline Oid identity_sequence(Relation rel, AttrNumber attnum) {
#if PG_VERSION_NUM >= 170000
  return getIdentitySequence(rel, attnum, false);
#else
  return getIdentitySequence(RelationGetRelid(rel), attnum, false);
#endif
}

// Index entries for a row just inserted (16 added onlySummarizing).
inline void insert_index_entries(ResultRelInfo *info, TupleTableSlot *slot, EState *estate) {
#if PG_VERSION_NUM >= 160000
  ExecInsertIndexTuples(info, slot, estate, false, false, nullptr, NIL, false);
#else
  ExecInsertIndexTuples(info, slot, estate, false, false, nullptr, NIL);
#endif
}
}  // namespace orch::pg
