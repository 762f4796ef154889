#include "core/lifecycle.hpp"

#include <gtest/gtest.h>

namespace orch {
namespace {

using R = RunStatus;
using T = TaskStatus;

TEST(Lifecycle, Labels) {
  EXPECT_EQ(to_string(R::Pending), "PENDING");
  EXPECT_EQ(to_string(R::InProgress), "IN_PROGRESS");
  EXPECT_EQ(to_string(R::Completed), "COMPLETED");
  EXPECT_EQ(to_string(R::Failed), "FAILED");
  EXPECT_EQ(to_string(R::Stopped), "STOPPED");
  EXPECT_EQ(to_string(T::Pending), "PENDING");
  EXPECT_EQ(to_string(T::Dispatched), "DISPATCHED");
  EXPECT_EQ(to_string(T::Running), "RUNNING");
  EXPECT_EQ(to_string(T::Completed), "COMPLETED");
  EXPECT_EQ(to_string(T::Failed), "FAILED");
  EXPECT_EQ(to_string(T::Stopped), "STOPPED");
  EXPECT_EQ(to_string(T::Skipped), "SKIPPED");
}

TEST(Lifecycle, ParseRoundTripsAndIsExact) {
  for (R s : kAllRunStatuses) EXPECT_EQ(parse_run_status(to_string(s)), s);
  for (T s : kAllTaskStatuses) EXPECT_EQ(parse_task_status(to_string(s)), s);
  for (const char *bad : {"", "pending", "Pending", "IN PROGRESS", "INPROGRESS", " PENDING", "RUNNING", "SKIPPED"})
    EXPECT_EQ(parse_run_status(bad), std::nullopt) << bad;
  for (const char *bad : {"", "running", "IN_PROGRESS", "DISPATCHED ", "DONE"})
    EXPECT_EQ(parse_task_status(bad), std::nullopt) << bad;
}

// Rows: from; columns: to; order as in kAllRunStatuses.
//                                   PEND   IN_P   COMP   FAIL   STOP
constexpr bool kRunLegal[5][5] = {/* PENDING     */ {false, true, false, true, true},
                                  /* IN_PROGRESS */ {false, false, true, true, true},
                                  /* COMPLETED   */ {false, true, false, false, false},
                                  /* FAILED      */ {false, true, false, false, false},
                                  /* STOPPED     */ {false, true, false, false, false}};

TEST(Lifecycle, RunMatrix) {
  int legal = 0;
  for (std::size_t f = 0; f < 5; ++f)
    for (std::size_t t = 0; t < 5; ++t) {
      R from = kAllRunStatuses[f], to = kAllRunStatuses[t];
      EXPECT_EQ(is_legal(from, to), kRunLegal[f][t]) << to_string(from) << " -> " << to_string(to);
      legal += is_legal(from, to);
    }
  EXPECT_EQ(legal, 9);
}

//                                    PEND   DISP   RUN    COMP   FAIL   STOP   SKIP
constexpr bool kTaskLegal[7][7] = {/* PENDING    */ {false, true, false, false, true, true, true},
                                   /* DISPATCHED */ {true, false, true, true, true, true, false},
                                   /* RUNNING    */ {true, false, false, true, true, true, false},
                                   /* COMPLETED  */ {false, false, false, false, false, false, false},
                                   /* FAILED     */ {true, false, false, false, false, false, false},
                                   /* STOPPED    */ {true, false, false, false, false, false, false},
                                   /* SKIPPED    */ {true, false, false, false, false, false, false}};

TEST(Lifecycle, TaskMatrix) {
  int legal = 0;
  for (std::size_t f = 0; f < 7; ++f)
    for (std::size_t t = 0; t < 7; ++t) {
      T from = kAllTaskStatuses[f], to = kAllTaskStatuses[t];
      EXPECT_EQ(is_legal(from, to), kTaskLegal[f][t]) << to_string(from) << " -> " << to_string(to);
      legal += is_legal(from, to);
    }
  EXPECT_EQ(legal, 16);
}

TEST(Lifecycle, StayingPutIsNotAMove) {
  for (R s : kAllRunStatuses) EXPECT_FALSE(is_legal(s, s));
  for (T s : kAllTaskStatuses) EXPECT_FALSE(is_legal(s, s));
}

TEST(Lifecycle, DescribeIllegal) {
  EXPECT_EQ(describe_illegal(T::Completed, T::Running), "illegal task status change from COMPLETED to RUNNING");
  EXPECT_EQ(describe_illegal(R::Completed, R::Failed), "illegal run status change from COMPLETED to FAILED");
  EXPECT_EQ(describe_illegal(R::Pending, R::InProgress), "illegal run status change from PENDING to IN_PROGRESS");
}

}  // namespace
}  // namespace orch
