#include "pg/shared_state.hpp"

#include "pg/postgres_headers.hpp"

extern "C" {
#include "port/atomics.h"
#include "storage/procarray.h"
}

namespace orch::pg {

namespace {

constexpr int kMaxSchedulers = 64;

struct SchedulerSlot {
  Oid database;        // InvalidOid: free
  int pgprocno;        // the scheduler's PGPROC, whose latch we set
  pg_atomic_uint32 wake_generation;  // bumped by every committed wake-up
  pg_atomic_uint32 stop_generation;  // bumped by every committed orch.stop()
};

struct SharedState {
  slock_t mutex;  // guards database / pgprocno of the slots
  SchedulerSlot slots[kMaxSchedulers];
};

SharedState *shared = nullptr;
shmem_request_hook_type previous_request_hook = nullptr;
shmem_startup_hook_type previous_startup_hook = nullptr;

void request_hook() {
  if (previous_request_hook) previous_request_hook();
  RequestAddinShmemSpace(MAXALIGN(sizeof(SharedState)));
}

void startup_hook() {
  if (previous_startup_hook) previous_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  shared = static_cast<SharedState *>(ShmemInitStruct("pg_orch", sizeof(SharedState), &found));
  if (!found) {
    SpinLockInit(&shared->mutex);
    for (auto &slot : shared->slots) {
      slot.database = InvalidOid;
      slot.pgprocno = -1;
      pg_atomic_init_u32(&slot.wake_generation, 0);
      pg_atomic_init_u32(&slot.stop_generation, 0);
    }
  }
  LWLockRelease(AddinShmemInitLock);
}

SchedulerSlot *find_slot(Oid database) {
  for (auto &slot : shared->slots)
    if (slot.database == database) return &slot;
  return nullptr;
}

void withdraw_scheduler(int, Datum) {
  SpinLockAcquire(&shared->mutex);
  if (SchedulerSlot *slot = find_slot(MyDatabaseId); slot && slot->pgprocno == MyProc->pgprocno) {
    slot->pgprocno = -1;
  }
  SpinLockRelease(&shared->mutex);
}

// Per-transaction wake request of a session.
bool wake_registered = false;
bool wake_pending = false;
bool wake_stop = false;

void on_transaction_end(XactEvent event, void *) {
  if (event == XACT_EVENT_COMMIT && wake_pending && shared != nullptr) {
    int pgprocno = -1;
    SpinLockAcquire(&shared->mutex);
    if (SchedulerSlot *slot = find_slot(MyDatabaseId)) {
      pg_atomic_fetch_add_u32(&slot->wake_generation, 1);
      if (wake_stop) pg_atomic_fetch_add_u32(&slot->stop_generation, 1);
      pgprocno = slot->pgprocno;
    }
    SpinLockRelease(&shared->mutex);
    if (pgprocno >= 0) SetLatch(&ProcGlobal->allProcs[pgprocno].procLatch);
  }
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_COMMIT ||
      event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE) {
    wake_pending = false;
    wake_stop = false;
  }
}

}  // namespace

void request_shared_state() {
  previous_request_hook = shmem_request_hook;
  shmem_request_hook = request_hook;
  previous_startup_hook = shmem_startup_hook;
  shmem_startup_hook = startup_hook;
}

void register_scheduler() {
  if (shared == nullptr) elog(ERROR, "pg_orch shared memory is not initialised");
  SpinLockAcquire(&shared->mutex);
  SchedulerSlot *slot = find_slot(MyDatabaseId);
  if (slot == nullptr) slot = find_slot(InvalidOid);
  if (slot != nullptr) {
    slot->database = MyDatabaseId;
    slot->pgprocno = MyProc->pgprocno;
  }
  SpinLockRelease(&shared->mutex);
  if (slot == nullptr) elog(ERROR, "pg_orch supports at most %d databases with a scheduler", kMaxSchedulers);
  before_shmem_exit(withdraw_scheduler, 0);
}

// Our own slot: its database never changes, so no lock is needed.
std::uint32_t wake_generation() {
  SchedulerSlot *slot = find_slot(MyDatabaseId);
  return slot ? pg_atomic_read_u32(&slot->wake_generation) : 0;
}

std::uint32_t stop_generation() {
  SchedulerSlot *slot = find_slot(MyDatabaseId);
  return slot ? pg_atomic_read_u32(&slot->stop_generation) : 0;
}

void wake_scheduler_at_commit(bool stop_requested) {
  // Without shared_preload_libraries there is no scheduler to wake.
  if (shared == nullptr) return;
  if (!wake_registered) {
    RegisterXactCallback(on_transaction_end, nullptr);
    wake_registered = true;
  }
  wake_pending = true;
  wake_stop = wake_stop || stop_requested;
}

}  // namespace orch::pg
