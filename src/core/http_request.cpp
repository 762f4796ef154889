#include "core/http_request.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace orch {
namespace {

using json = nlohmann::json;

// The command array: method, url, body format, body, expected statuses
// ("200,201"; "" for any 2xx), then header names and values in turn.
enum Element : std::size_t { kMethod, kUrl, kBodyFormat, kBody, kExpectStatus, kFirstHeader };

const std::vector<std::string> &methods() {
  static const std::vector<std::string> all = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
  return all;
}

// Set by the executor from the request itself.
const std::vector<std::string> &reserved_headers() {
  static const std::vector<std::string> all = {"host", "content-length", "transfer-encoding", "connection"};
  return all;
}

std::string lower(std::string text) {
  for (char &c : text)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return text;
}

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string("!#$%&'*+-.^_`|~").find(c) != std::string::npos;
}

bool has_line_break(const std::string &text) { return text.find_first_of(std::string("\r\n\0", 3)) != std::string::npos; }

struct UrlParts {
  std::string host;  // as written
  std::size_t authority_end = 0;  // where the path or query starts
};

// scheme://host[:port] followed by nothing, "/..." or "?...": the host a
// name (letters, digits, '.', '-') or a bracketed IPv6 address; no user
// info, no placeholder. Throws InvalidInput.
UrlParts split_url(const std::string &url) {
  std::size_t start;
  if (url.compare(0, 7, "http://") == 0)
    start = 7;
  else if (url.compare(0, 8, "https://") == 0)
    start = 8;
  else
    throw InvalidInput("\"url\" must start with http:// or https://, not " + quote(url));
  std::size_t end = url.find_first_of("/?", start);
  if (end == std::string::npos) end = url.size();
  std::string authority = url.substr(start, end - start);
  std::string host = authority, port;
  if (!authority.empty() && authority[0] == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string::npos) throw InvalidInput("\"url\" has an unclosed [ in its host");
    host = authority.substr(0, close + 1);
    std::string rest = authority.substr(close + 1);
    if (!rest.empty() && rest[0] != ':') throw InvalidInput("\"url\" has an invalid host " + quote(authority));
    if (!rest.empty()) port = rest.substr(1);
    if (host.size() < 3 || host.find_first_not_of("0123456789abcdefABCDEF:.", 1) != host.size() - 1)
      throw InvalidInput("\"url\" has an invalid IPv6 host " + quote(host));
  } else {
    std::size_t colon = authority.find(':');
    if (colon != std::string::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
      if (port.empty()) throw InvalidInput("\"url\" has an empty port");
    }
    bool valid = !host.empty() && host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                         "0123456789.-") == std::string::npos;
    if (!valid)
      throw InvalidInput("\"url\" must name its host literally (letters, digits, \".\" and \"-\", or [IPv6]), not " +
                         quote(authority) + "; placeholders may be used only in the path and query");
  }
  if (!port.empty()) {
    bool digits = port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoi(port) < 1 || std::stoi(port) > 65535)
      throw InvalidInput("\"url\" has an invalid port " + quote(port));
  }
  return {host, end};
}

std::string percent_encode(const std::string &value) {
  static const char *hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace

HttpRequest parse_http_request(const json &http, const json *expect_status) {
  if (!http.is_object()) throw InvalidInput("\"http\" must be an object with \"method\", \"url\", \"headers\", \"body\"");
  for (const auto &item : http.items())
    if (item.key() != "method" && item.key() != "url" && item.key() != "headers" && item.key() != "body")
      throw InvalidInput("\"http\" has unknown key " + quote(item.key()));
  HttpRequest request;
  auto method = http.find("method");
  request.method = "GET";
  if (method != http.end() && !method->is_null()) {
    if (!method->is_string() ||
        std::find(methods().begin(), methods().end(), method->get<std::string>()) == methods().end())
      throw InvalidInput("\"http\": \"method\" must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    request.method = method->get<std::string>();
  }
  auto url = http.find("url");
  if (url == http.end() || !url->is_string()) throw InvalidInput("\"http\": \"url\" is required, as a string");
  request.url = url->get<std::string>();
  UrlParts parts = split_url(request.url);
  for (std::size_t i = parts.authority_end; i < request.url.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(request.url[i]);
    if (c <= 0x20 || c >= 0x7f)
      throw InvalidInput("\"url\" must not contain spaces, control or non-ASCII characters (percent-encode them)");
  }
  if (has_dot_segment(request.url)) throw InvalidInput("\"url\" must not have \".\" or \"..\" path segments");
  auto headers = http.find("headers");
  if (headers != http.end() && !headers->is_null()) {
    if (!headers->is_object()) throw InvalidInput("\"http\": \"headers\" must be an object of strings");
    for (const auto &item : headers->items()) {
      const std::string &name = item.key();
      if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char))
        throw InvalidInput("\"http\": header name " + quote(name) + " is not valid");
      const std::vector<std::string> &reserved = reserved_headers();
      if (std::find(reserved.begin(), reserved.end(), lower(name)) != reserved.end())
        throw InvalidInput("\"http\": header " + quote(name) + " is set by pg_orch");
      if (!item.value().is_string()) throw InvalidInput("\"http\": header " + quote(name) + " must be a string");
      const std::string &value = item.value().get_ref<const std::string &>();
      if (has_line_break(value)) throw InvalidInput("\"http\": header " + quote(name) + " must be one line");
      request.headers.emplace_back(name, value);
    }
  }
  auto body = http.find("body");
  if (body != http.end() && !body->is_null()) {
    request.body_format = body->is_string() ? HttpBody::Text : HttpBody::Json;
    request.body = body->is_string() ? body->get<std::string>() : body->dump();
    if (request.body.find('\0') != std::string::npos) throw InvalidInput("\"http\": \"body\" must not contain NUL");
    bool has_content_type = std::any_of(request.headers.begin(), request.headers.end(),
                                        [](const auto &header) { return lower(header.first) == "content-type"; });
    if (request.body_format == HttpBody::Json && !has_content_type)
      request.headers.emplace_back("Content-Type", "application/json");
  }
  if (expect_status) {
    const char *message = "\"expect_status\" must be a non-empty array of HTTP statuses (100 to 599)";
    if (!expect_status->is_array() || expect_status->empty()) throw InvalidInput(message);
    for (const json &status : *expect_status) {
      double d = status.is_number() ? status.get<double>() : 0;
      if (!(d >= 100 && d <= 599) || d != std::floor(d)) throw InvalidInput(message);
      request.expect_status.push_back(static_cast<int>(d));
    }
  }
  return request;
}

std::vector<std::string> http_command(const HttpRequest &request) {
  std::string expect;
  for (int status : request.expect_status) expect += (expect.empty() ? "" : ",") + std::to_string(status);
  std::vector<std::string> command = {
      request.method, request.url,
      request.body_format == HttpBody::None ? "" : request.body_format == HttpBody::Text ? "text" : "json",
      request.body, expect};
  for (const auto &[name, value] : request.headers) {
    command.push_back(name);
    command.push_back(value);
  }
  return command;
}

HttpRequest http_request_of(const std::vector<std::string> &command) {
  if (command.size() < kFirstHeader || (command.size() - kFirstHeader) % 2 != 0)
    throw InvalidInput("not an http request");
  HttpRequest request;
  request.method = command[kMethod];
  request.url = command[kUrl];
  const std::string &format = command[kBodyFormat];
  request.body_format = format == "json" ? HttpBody::Json : format == "text" ? HttpBody::Text : HttpBody::None;
  request.body = command[kBody];
  const std::string &expect = command[kExpectStatus];
  for (std::size_t start = 0; start < expect.size();) {
    std::size_t comma = std::min(expect.find(',', start), expect.size());
    request.expect_status.push_back(std::stoi(expect.substr(start, comma - start)));
    start = comma + 1;
  }
  for (std::size_t i = kFirstHeader; i < command.size(); i += 2) request.headers.emplace_back(command[i], command[i + 1]);
  return request;
}

std::string http_host(const std::string &url) {
  std::string host = split_url(url).host;
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return lower(host);
}

std::string encode_http_value(const std::vector<std::string> &command, std::size_t index, const std::string &value) {
  if (index == kUrl) return percent_encode(value);
  if (index == kBody && command.size() > kBodyFormat && command[kBodyFormat] == "json") {
    std::string text = json(value).dump(-1, ' ', false, json::error_handler_t::replace);
    std::string escaped;
    for (std::size_t i = 1; i + 1 < text.size(); ++i) escaped += text[i] == '{' ? std::string("\\u007b") : std::string(1, text[i]);
    return escaped;
  }
  if (index >= kFirstHeader && has_line_break(value))
    throw InvalidInput("a value for header " + quote(command[index - 1]) + " must be one line");
  return value;
}

bool has_dot_segment(const std::string &url) {
  std::size_t start = split_url(url).authority_end;
  std::size_t end = std::min(url.find_first_of("?#", start), url.size());
  for (std::size_t at = start; at < end;) {
    std::size_t next = std::min(url.find('/', at + 1), end);
    std::string segment = lower(url.substr(at + 1, next - at - 1));
    for (std::size_t dot; (dot = segment.find("%2e")) != std::string::npos;) segment.replace(dot, 3, ".");
    if (segment == "." || segment == "..") return true;
    at = next;
  }
  return false;
}

bool status_expected(const HttpRequest &request, long status) {
  if (request.expect_status.empty()) return status >= 200 && status <= 299;
  return std::find(request.expect_status.begin(), request.expect_status.end(), status) != request.expect_status.end();
}

bool status_retryable(long status) { return status >= 500; }

}  // namespace orch
