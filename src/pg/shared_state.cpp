#include "pg/shared_state.hpp"

#include <signal.h>

#include <algorithm>

extern "C" {
#include "port/atomics.h"
}

namespace orch::pg {

namespace {

// Databases with a scheduler at once; each scheduler also takes a
// background worker slot (README: "Worker slots").
constexpr int kMaxSchedulers = 256;
constexpr int kMaxMessages = 256;
// How long DROP DATABASE waits for the scheduler to leave; PostgreSQL then
// waits up to 5 s more for any other session.
constexpr int kHoldWaitMs = 10000;

struct SchedulerSlot {
  Oid database;  // InvalidOid: free
  pid_t pid;     // 0: its scheduler has left (the generations stay)
  Latch *latch;
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
  // Databases held by DROP / RENAME / CREATE ... TEMPLATE: one entry per
  // backend at most (MaxBackends of them), apart from the scheduler slots,
  // so that holding, which any database owner may do, never takes a slot.
  int hold_count;
  Oid holds[FLEXIBLE_ARRAY_MEMBER];
};

Size shared_size() { return add_size(offsetof(SharedState, holds), mul_size(sizeof(Oid), MaxBackends)); }

SharedState *shared = nullptr;
shmem_request_hook_type previous_request_hook = nullptr;
shmem_startup_hook_type previous_startup_hook = nullptr;

void request_hook() {
  if (previous_request_hook) previous_request_hook();
  RequestAddinShmemSpace(MAXALIGN(shared_size()));
}

void startup_hook() {
  if (previous_startup_hook) previous_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  shared = static_cast<SharedState *>(ShmemInitStruct("pg_orch", shared_size(), &found));
  if (!found) {
    SpinLockInit(&shared->mutex);
    shared->launcher_latch = nullptr;
    shared->message_count = 0;
    shared->messages_lost = false;
    for (auto &slot : shared->slots) {
      slot.database = InvalidOid;
      slot.pid = 0;
      slot.latch = nullptr;
      pg_atomic_init_u32(&slot.wake_generation, 0);
      pg_atomic_init_u32(&slot.stop_generation, 0);
    }
    shared->hold_count = MaxBackends;
    for (int i = 0; i < shared->hold_count; ++i) shared->holds[i] = InvalidOid;
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
  }
  return slot;
}

bool is_held(Oid database) {
  for (int i = 0; i < shared->hold_count; ++i)
    if (shared->holds[i] == database) return true;
  return false;
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
    slot->database = InvalidOid;
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
int held_entry = -1;  // this backend's entry in shared->holds

void release_held_database() {
  SpinLockAcquire(&shared->mutex);
  shared->holds[held_entry] = InvalidOid;
  Latch *latch = shared->launcher_latch;
  SpinLockRelease(&shared->mutex);
  held_entry = -1;
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
  if (held_entry >= 0) release_held_database();
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
  bool held = is_held(MyDatabaseId);
  SchedulerSlot *slot = held ? nullptr : find_or_claim_slot(MyDatabaseId);
  if (slot != nullptr) {
    slot->pid = MyProcPid;
    slot->latch = &MyProc->procLatch;
  }
  SpinLockRelease(&shared->mutex);
  if (held) return false;
  if (slot == nullptr) elog(ERROR, "pg_orch supports at most %d databases with a scheduler", kMaxSchedulers);
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
  if (shared == nullptr || held_entry >= 0) return;
  register_callback();
  pid_t pid = 0;
  SpinLockAcquire(&shared->mutex);
  for (int i = 0; i < shared->hold_count && held_entry < 0; ++i)
    if (!OidIsValid(shared->holds[i])) held_entry = i;
  if (held_entry >= 0) shared->holds[held_entry] = database;
  if (SchedulerSlot *slot = find_slot(database)) pid = slot->pid;
  SpinLockRelease(&shared->mutex);
  if (held_entry < 0 || pid == 0) return;
  // SIGTERM: the scheduler stops its children, sql task workers and pruner, and leaves.
  kill(pid, SIGTERM);
  for (int waited = 0; waited < kHoldWaitMs; waited += 10) {
    SpinLockAcquire(&shared->mutex);
    SchedulerSlot *slot = find_slot(database);
    bool gone = slot == nullptr || slot->pid != pid;
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
  std::vector<Oid> held(static_cast<std::size_t>(shared->hold_count), InvalidOid);
  SpinLockAcquire(&shared->mutex);
  memcpy(held.data(), shared->holds, sizeof(Oid) * held.size());
  SpinLockRelease(&shared->mutex);
  held.erase(std::remove(held.begin(), held.end(), InvalidOid), held.end());
  std::sort(held.begin(), held.end());
  held.erase(std::unique(held.begin(), held.end()), held.end());
  return held;
}

}  // namespace orch::pg
