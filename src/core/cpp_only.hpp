// Included last by every header in src/core/. The core is pure C++: it must
// never see PostgreSQL's headers (their macros and longjmp-based errors do
// not mix with C++ objects), so including postgres.h first is a build error.
#pragma once

#ifdef POSTGRES_H
static_assert(false, "src/core/ must not include PostgreSQL headers");
#endif
