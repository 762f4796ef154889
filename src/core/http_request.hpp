// An http task's request: validated at definition from
// {"http": {"method", "url", "headers", "body"}, "expect_status": [..]},
// stored in the task's `command` array so that input, outputs and items
// are substituted there like a command's (one element at a time), and read
// back by the http executor.
//
// The scheme, host and port are literal (checked here), so substituted
// values reach only the url's path and query (percent-encoded), header
// values (refused if they hold a line break) and the body (inside its JSON
// strings, escaped, when the body is JSON).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/cpp_only.hpp"

namespace orch {

enum class HttpBody { None, Text, Json };

struct HttpRequest {
  std::string method;  // GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS
  std::string url;     // http(s)://host[:port], then path and query
  HttpBody body_format = HttpBody::None;
  std::string body;  // Json: the value as JSON text
  std::vector<int> expect_status;  // empty: any 2xx
  std::vector<std::pair<std::string, std::string>> headers;
};

// Validates the "http" object and "expect_status" (nullptr: absent).
// Throws InvalidInput with a message naming the bad field.
HttpRequest parse_http_request(const nlohmann::json &http, const nlohmann::json *expect_status);

// The request as a task's command array, and back (throws InvalidInput for
// an array that is not one).
std::vector<std::string> http_command(const HttpRequest &request);
HttpRequest http_request_of(const std::vector<std::string> &command);

// The url's host, lower case, without brackets for IPv6 ([::1] -> ::1).
std::string http_host(const std::string &url);

// How a value substituted into element `index` of an http task's command is
// written there: percent-encoded in the url, JSON-escaped in a JSON body
// (with "{" as \u007b, so that no later step reads a placeholder in it),
// refused in a header if it holds CR, LF or NUL (throws InvalidInput).
std::string encode_http_value(const std::vector<std::string> &command, std::size_t index, const std::string &value);

// Whether the url's path has a "." or ".." segment (also as %2E): a value
// put there would climb out of the segment it was given. The definition
// refuses them in the url as written, so at launch they come from values.
bool has_dot_segment(const std::string &url);

// Whether a response status completes the task.
bool status_expected(const HttpRequest &request, long status);

// Whether a failed request may succeed if tried again: 5xx. (Other
// statuses outside expect_status fail the task at once.)
bool status_retryable(long status);

}  // namespace orch
