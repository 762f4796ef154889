#include "pg/shared_state.hpp"

#include <signal.h>

extern "C" {
#include "port/atomics.h"
}

namespace orch::pg {

namespace {

// Databases with a scheduler (or held) at once; each scheduler also takes a
// background worker slot (README: "Worker slots").
constexpr int kMaxSchedulers = 256;
constexpr int kMaxMessages = 256;
// How long DROP DATABASE waits for the scheduler to leave; PostgreSQL then
// waits up to 5 s more for any other session.
constexpr int kHoldWaitMs = 10000;

struct SchedulerSlot {
  Oid database;  // InvalidOid: free
  pid_t pid;     // 0: no scheduler (the slot may only hold the database)
  Latch *latch;
  bool held;
  pg_atomic_uint32 wake_generation;  // bumped by every committed wake-up
  pg_atomic_uint32 stop_generation;  // bumped by every committed orch.stop()
};

enum class MessageKind { ExtensionChanged, NotInstalled };
struct LauncherMessage {
  Oid database;
  MessageKind kind;
};

struct SharedState {
  slock_t mutex;  // guards everything but the generations
  Latch *launcher_latch;
  SchedulerSlot slots[kMaxSchedulers];
  int message_count;
  bool messages_lost;
  LauncherMessage messages[kMaxMessages];
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
    shared->launcher_latch = nullptr;
    shared->message_count = 0;
    shared->messages_lost = false;
    for (auto &slot : shared->slots) {
      slot.database = InvalidOid;
      slot.pid = 0;
      slot.latch = nullptr;
      slot.held = false;
      pg_atomic_init_u32(&slot.wake_generation, 0);
      pg_atomic_init_u32(&slot.stop_generation, 0);
    }
  }
  LWLockRelease(AddinShmemInitLock);
}

// Callers hold the mutex.
SchedulerSlot *find_slot(Oid database) {
  for (auto &slot : shared->slots)
    if (slot.database == database) return &slot;
  return nullptr;
}

SchedulerSlot *find_or_claim_slot(Oid database) {
  SchedulerSlot *slot = find_slot(database);
  if (slot == nullptr && (slot = find_slot(InvalidOid)) != nullptr) {
    slot->database = database;
    slot->pid = 0;
    slot->latch = nullptr;
    slot->held = false;
  }
  return slot;
}

void free_if_unused(SchedulerSlot *slot) {
  if (slot->pid == 0 && !slot->held) slot->database = InvalidOid;
}

void send_to_launcher(Oid database, MessageKind kind) {
  if (shared == nullptr) return;
  SpinLockAcquire(&shared->mutex);
  if (shared->message_count < kMaxMessages)
    shared->messages[shared->message_count++] = {database, kind};
  else
    shared->messages_lost = true;
  Latch *latch = shared->launcher_latch;
  SpinLockRelease(&shared->mutex);
  if (latch != nullptr) SetLatch(latch);
}

void withdraw_scheduler(int, Datum) {
  SpinLockAcquire(&shared->mutex);
  if (SchedulerSlot *slot = find_slot(MyDatabaseId); slot && slot->pid == MyProcPid) {
    slot->pid = 0;
    slot->latch = nullptr;
    free_if_unused(slot);
  }
  SpinLockRelease(&shared->mutex);
}

void withdraw_launcher(int, Datum) {
  SpinLockAcquire(&shared->mutex);
  shared->launcher_latch = nullptr;
  SpinLockRelease(&shared->mutex);
}

// What this session's transaction asked for at its end.
bool callback_registered = false;
bool wake_pending = false;
bool wake_stop = false;
Oid start_pending = InvalidOid;  // database whose scheduler to ask for
Oid held_database = InvalidOid;

void release_held_database() {
  SpinLockAcquire(&shared->mutex);
  if (SchedulerSlot *slot = find_slot(held_database)) {
    slot->held = false;
    free_if_unused(slot);
  }
  Latch *latch = shared->launcher_latch;
  SpinLockRelease(&shared->mutex);
  held_database = InvalidOid;
  if (latch != nullptr) SetLatch(latch);
}

void wake_scheduler() {
  Latch *latch = nullptr;
  SpinLockAcquire(&shared->mutex);
  if (SchedulerSlot *slot = find_slot(MyDatabaseId)) {
    pg_atomic_fetch_add_u32(&slot->wake_generation, 1);
    if (wake_stop) pg_atomic_fetch_add_u32(&slot->stop_generation, 1);
    latch = slot->latch;
  }
  SpinLockRelease(&shared->mutex);
  if (latch != nullptr) SetLatch(latch);
}

void on_transaction_end(XactEvent event, void *) {
  bool commit = event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT;
  bool end = commit || event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE;
  if (!end) return;
  if (commit && wake_pending) wake_scheduler();
  if (commit && OidIsValid(start_pending)) send_to_launcher(start_pending, MessageKind::ExtensionChanged);
  if (OidIsValid(held_database)) release_held_database();
  wake_pending = false;
  wake_stop = false;
  start_pending = InvalidOid;
}

void register_callback() {
  if (!callback_registered) {
    RegisterXactCallback(on_transaction_end, nullptr);
    callback_registered = true;
  }
}

}  // namespace

void request_shared_state() {
  previous_request_hook = shmem_request_hook;
  shmem_request_hook = request_hook;
  previous_startup_hook = shmem_startup_hook;
  shmem_startup_hook = startup_hook;
}

bool register_scheduler() {
  if (shared == nullptr) elog(ERROR, "pg_orch shared memory is not initialised");
  SpinLockAcquire(&shared->mutex);
  SchedulerSlot *slot = find_or_claim_slot(MyDatabaseId);
  bool held = slot != nullptr && slot->held;
  if (slot != nullptr && !held) {
    slot->pid = MyProcPid;
    slot->latch = &MyProc->procLatch;
  }
  SpinLockRelease(&shared->mutex);
  if (slot == nullptr) elog(ERROR, "pg_orch supports at most %d databases with a scheduler", kMaxSchedulers);
  if (held) return false;
  before_shmem_exit(withdraw_scheduler, 0);
  return true;
}

// Our own slot: its database never changes while we hold it, so no lock is needed.
std::uint32_t wake_generation() {
  SchedulerSlot *slot = find_slot(MyDatabaseId);
  return slot ? pg_atomic_read_u32(&slot->wake_generation) : 0;
}

std::uint32_t stop_generation() {
  SchedulerSlot *slot = find_slot(MyDatabaseId);
  return slot ? pg_atomic_read_u32(&slot->stop_generation) : 0;
}

void tell_launcher_not_installed() { send_to_launcher(MyDatabaseId, MessageKind::NotInstalled); }

void wake_scheduler_at_commit(bool stop_requested) {
  // Without shared_preload_libraries there is no scheduler to wake.
  if (shared == nullptr) return;
  register_callback();
  wake_pending = true;
  wake_stop = wake_stop || stop_requested;
}

void start_scheduler_at_commit(Oid database) {
  if (shared == nullptr) return;
  register_callback();
  start_pending = database;
}

void hold_database(Oid database) {
  if (shared == nullptr || OidIsValid(held_database)) return;
  register_callback();
  SpinLockAcquire(&shared->mutex);
  SchedulerSlot *slot = find_or_claim_slot(database);
  pid_t pid = 0;
  if (slot != nullptr) {
    slot->held = true;
    pid = slot->pid;
  }
  SpinLockRelease(&shared->mutex);
  if (slot == nullptr) return;
  held_database = database;
  if (pid == 0) return;
  // SIGTERM: the scheduler stops its children and sql task workers and leaves.
  kill(pid, SIGTERM);
  for (int waited = 0; waited < kHoldWaitMs; waited += 10) {
    SpinLockAcquire(&shared->mutex);
    bool gone = slot->pid != pid;
    SpinLockRelease(&shared->mutex);
    if (gone) return;
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10, PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  }
}

void register_launcher_latch() {
  SpinLockAcquire(&shared->mutex);
  shared->launcher_latch = &MyProc->procLatch;
  SpinLockRelease(&shared->mutex);
  before_shmem_exit(withdraw_launcher, 0);
}

LauncherMessages take_launcher_messages() {
  LauncherMessages taken;
  LauncherMessage copy[kMaxMessages];
  SpinLockAcquire(&shared->mutex);
  int count = shared->message_count;
  memcpy(copy, shared->messages, sizeof(LauncherMessage) * static_cast<std::size_t>(count));
  taken.lost = shared->messages_lost;
  shared->message_count = 0;
  shared->messages_lost = false;
  SpinLockRelease(&shared->mutex);
  for (int i = 0; i < count; ++i)
    (copy[i].kind == MessageKind::ExtensionChanged ? taken.extension_changed : taken.not_installed)
        .push_back(copy[i].database);
  return taken;
}

std::vector<Oid> held_databases() {
  Oid copy[kMaxSchedulers];
  int count = 0;
  SpinLockAcquire(&shared->mutex);
  for (const auto &slot : shared->slots)
    if (slot.held) copy[count++] = slot.database;
  SpinLockRelease(&shared->mutex);
  return std::vector<Oid>(copy, copy + count);
}

}  // namespace orch::pg
