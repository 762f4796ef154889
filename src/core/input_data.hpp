// The seed's flat input format, "key:value;key:value", as accepted by
// orch.input_data(text).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/cpp_only.hpp"

namespace orch {

using InputPairs = std::vector<std::pair<std::string, std::string>>;

// Parses "input_file:/data/in.json;output_dir:/data/out". A value is
// everything after its item's first unescaped ':' (so "url:http://h:80/x"
// works) and is kept verbatim; whitespace around keys is trimmed. "\;",
// "\:" and "\\" escape those characters in keys and values; any other
// backslash is kept as is (so "C:\data" needs no escaping). A trailing ';'
// is allowed; empty input gives no pairs. Pairs come back in input order.
// Throws InvalidInput("invalid input data at character N: ...") for an item
// without ':', an empty key, a duplicate key or a NUL byte (N counts
// characters from 1, as PostgreSQL does for syntax errors).
InputPairs parse_input_data(const std::string &text);

// parse_input_data, then as a JSON object text whose values are all strings.
// Throws InvalidInput when the text is not valid UTF-8.
std::string input_data_to_json(const std::string &text);

// The inverse of parse_input_data: escapes ';', ':' and '\' in keys and ';'
// and '\' in values.
std::string format_input_data(const InputPairs &pairs);

}  // namespace orch
