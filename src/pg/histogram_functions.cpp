// SQL-callable C functions over duration histograms (core/duration_histogram):
// as bigint[] whose subscripts are bucket numbers.
#include <vector>

#include "core/duration_histogram.hpp"
#include "pg/guards.hpp"

extern "C" {
#include "utils/array.h"
#include "utils/lsyscache.h"
}

extern "C" {
PG_FUNCTION_INFO_V1(orch_duration_histogram_add);
PG_FUNCTION_INFO_V1(orch_duration_histogram_merge);
PG_FUNCTION_INFO_V1(orch_duration_percentile);
}

namespace orch::pg {
namespace {

// A NULL argument is an empty histogram; NULL elements count as none.
DurationHistogram histogram_arg(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return DurationHistogram();
  int first = 0;
  std::vector<std::int64_t> counts;
  pg_call([&] {
    ArrayType *array = PG_GETARG_ARRAYTYPE_P(n);
    if (ARR_NDIM(array) > 1) ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR), errmsg("a histogram has one dimension")));
    Datum *values;
    bool *nulls;
    int count;
    deconstruct_array(array, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &values, &nulls, &count);
    first = ARR_NDIM(array) == 1 ? ARR_LBOUND(array)[0] : 0;
    counts.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) counts.push_back(nulls[i] ? 0 : DatumGetInt64(values[i]));
  });
  return DurationHistogram(first, std::move(counts));
}

Datum histogram_result(const DurationHistogram &histogram) {
  return pg_call([&] {
    const std::vector<std::int64_t> &counts = histogram.counts();
    std::vector<Datum> values;
    for (std::int64_t count : counts) values.push_back(Int64GetDatum(count));
    int dims[1] = {static_cast<int>(values.size())};
    int lower[1] = {histogram.first()};
    return PointerGetDatum(construct_md_array(values.data(), nullptr, values.empty() ? 0 : 1, dims, lower, INT8OID, 8,
                                              FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
  });
}

}  // namespace
}  // namespace orch::pg

using namespace orch::pg;

// orch._duration_histogram_add(bigint[], ms float8): the aggregate's step.
extern "C" Datum orch_duration_histogram_add(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    orch::DurationHistogram histogram = histogram_arg(fcinfo, 0);
    if (!PG_ARGISNULL(1)) histogram.add(PG_GETARG_FLOAT8(1));
    return histogram_result(histogram);
  });
}

extern "C" Datum orch_duration_histogram_merge(PG_FUNCTION_ARGS) {
  return cpp_entry([&] {
    orch::DurationHistogram histogram = histogram_arg(fcinfo, 0);
    histogram.merge(histogram_arg(fcinfo, 1));
    return histogram_result(histogram);
  });
}

// orch._duration_percentile(bigint[], q float8): ms, NULL when empty.
extern "C" Datum orch_duration_percentile(PG_FUNCTION_ARGS) {
  std::optional<double> ms;
  Datum result = cpp_entry([&] {
    ms = histogram_arg(fcinfo, 0).percentile(PG_GETARG_FLOAT8(1));
    return Float8GetDatum(ms.value_or(0));
  });
  if (!ms) PG_RETURN_NULL();
  return result;
}
