#include "core/http_request.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/fan_out.hpp"
#include "core/outputs.hpp"
#include "core/placeholders.hpp"
#include "core/task_spec.hpp"

using nlohmann::json;
using orch::InvalidInput;

namespace {

orch::HttpRequest parse(const std::string &http, const std::string &expect = "") {
  json expect_status = expect.empty() ? json() : json::parse(expect);
  return orch::parse_http_request(json::parse(http), expect.empty() ? nullptr : &expect_status);
}

std::string refusal(const std::string &http, const std::string &expect = "") {
  try {
    parse(http, expect);
  } catch (const InvalidInput &e) {
    return e.what();
  }
  return "accepted";
}

orch::ValueEncoder encoder(const std::vector<std::string> &command) {
  return [&command](std::size_t index, const std::string &value) {
    return orch::encode_http_value(command, index, value);
  };
}

}  // namespace

TEST(HttpRequest, RoundTripsThroughTheCommandArray) {
  orch::HttpRequest request = parse(
      R"({"method": "POST", "url": "https://api.example.com:8443/v1/items?x={{x}}",
          "headers": {"Authorization": "Bearer {{token}}"}, "body": {"name": "{{name}}", "n": 2}})",
      "[200, 201]");
  std::vector<std::string> command = orch::http_command(request);
  orch::HttpRequest back = orch::http_request_of(command);
  EXPECT_EQ(back.method, "POST");
  EXPECT_EQ(back.url, "https://api.example.com:8443/v1/items?x={{x}}");
  EXPECT_EQ(back.body_format, orch::HttpBody::Json);
  EXPECT_EQ(json::parse(back.body), json::parse(R"({"name": "{{name}}", "n": 2})"));
  EXPECT_EQ(back.expect_status, (std::vector<int>{200, 201}));
  ASSERT_EQ(back.headers.size(), 2u);
  EXPECT_EQ(back.headers[0], (std::pair<std::string, std::string>{"Authorization", "Bearer {{token}}"}));
  EXPECT_EQ(back.headers[1], (std::pair<std::string, std::string>{"Content-Type", "application/json"}));
  EXPECT_EQ(orch::http_host(back.url), "api.example.com");
}

TEST(HttpRequest, DefaultsToGetWithoutBody) {
  orch::HttpRequest request = parse(R"({"url": "http://127.0.0.1:8080"})");
  EXPECT_EQ(request.method, "GET");
  EXPECT_EQ(request.body_format, orch::HttpBody::None);
  EXPECT_TRUE(request.headers.empty());
  EXPECT_EQ(orch::http_host("http://[::1]:80/x"), "::1");
  EXPECT_EQ(orch::http_host("http://Example.COM/x"), "example.com");
}

TEST(HttpRequest, TheSchemeHostAndPortAreLiteral) {
  EXPECT_NE(refusal(R"({"url": "http://{{host}}/x"})").find("must name its host literally"), std::string::npos);
  EXPECT_NE(refusal(R"({"url": "http://example.com{{x}}/"})").find("must name its host literally"), std::string::npos);
  EXPECT_NE(refusal(R"({"url": "http://example.com:{{port}}/"})").find("invalid port"), std::string::npos);
  EXPECT_NE(refusal(R"({"url": "{{url}}"})").find("must start with http:// or https://"), std::string::npos);
  EXPECT_NE(refusal(R"({"url": "file:///etc/passwd"})").find("must start with http"), std::string::npos);
  EXPECT_NE(refusal(R"({"url": "http://allowed.com@evil.com/"})").find("literally"), std::string::npos);
  EXPECT_NE(refusal(R"({"url": "http://allowed.com\\@evil.com/"})").find("literally"), std::string::npos);
  EXPECT_NE(refusal(R"({"url": "http://allowed.com#@evil.com/"})").find("literally"), std::string::npos);
  EXPECT_NE(refusal(R"({"url": "http://a.com:99999/"})").find("invalid port"), std::string::npos);
  EXPECT_NE(refusal(R"({"url": "http://a.com/a b"})").find("must not contain spaces"), std::string::npos);
  EXPECT_EQ(refusal(R"({"url": "http://a.com/{{path}}?q={{q}}"})"), "accepted");
  EXPECT_NE(refusal(R"({"url": "http://a.com/x/../admin"})").find("path segments"), std::string::npos);
  EXPECT_NE(refusal(R"({"url": "http://a.com/x/%2e%2E/admin"})").find("path segments"), std::string::npos);
}

TEST(HttpRequest, RefusesBadFields) {
  EXPECT_NE(refusal(R"({"url": "http://a.com", "method": "CONNECT"})").find("\"method\" must be one of"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"url": "http://a.com", "verb": "GET"})").find("unknown key \"verb\""), std::string::npos);
  EXPECT_NE(refusal(R"({"method": "GET"})").find("\"url\" is required"), std::string::npos);
  EXPECT_NE(refusal(R"({"url": "http://a.com", "headers": {"Host": "b.com"}})").find("is set by pg_orch"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"url": "http://a.com", "headers": {"X-A": "1\r\nX-B: 2"}})").find("must be one line"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"url": "http://a.com", "headers": {"X {{a}}": "1"}})").find("is not valid"),
            std::string::npos);
  EXPECT_NE(refusal(R"({"url": "http://a.com", "headers": {"X-A": 1}})").find("must be a string"), std::string::npos);
  EXPECT_NE(refusal(R"({"url": "http://a.com"})", "[]").find("\"expect_status\""), std::string::npos);
  EXPECT_NE(refusal(R"({"url": "http://a.com"})", "[600]").find("\"expect_status\""), std::string::npos);
  EXPECT_NE(refusal(R"({"url": "http://a.com"})", "[\"200\"]").find("\"expect_status\""), std::string::npos);
}

TEST(HttpRequest, SubstitutedValuesAreEncodedForWhereTheyGo) {
  std::vector<std::string> command = orch::http_command(
      parse(R"({"method": "POST", "url": "http://a.com/items/{{id}}?q={{q}}",
                "headers": {"X-Name": "{{name}}"}, "body": {"text": "{{text}}"}})"));
  std::vector<std::string> out = orch::substitute_placeholders(
      command, R"({"id": "../admin", "q": "a&b=c#d", "name": "Ann", "text": "say \"hi\"\n"})", "call", false,
      encoder(command));
  orch::HttpRequest request = orch::http_request_of(out);
  EXPECT_EQ(request.url, "http://a.com/items/..%2Fadmin?q=a%26b%3Dc%23d");
  EXPECT_EQ(orch::http_host(request.url), "a.com");
  EXPECT_EQ(json::parse(request.body), json::parse(R"({"text": "say \"hi\"\n"})"));
  EXPECT_EQ(request.headers[0].second, "Ann");

  // A value cannot add a header line.
  EXPECT_THROW(orch::substitute_placeholders(command, R"({"id": 1, "q": 2, "name": "a\r\nHost: evil", "text": ""})",
                                             "call", false, encoder(command)),
               InvalidInput);
}

TEST(HttpRequest, DotSegmentsAreFoundInThePathOnly) {
  EXPECT_TRUE(orch::has_dot_segment("http://a.com/x/.."));
  EXPECT_TRUE(orch::has_dot_segment("http://a.com/./x"));
  EXPECT_TRUE(orch::has_dot_segment("http://a.com/x/%2E%2e/y?z"));
  EXPECT_FALSE(orch::has_dot_segment("http://a.com/x/.hidden/a..b?q=../.."));
  EXPECT_FALSE(orch::has_dot_segment("http://a.com"));
  std::vector<std::string> command = orch::http_command(parse(R"({"url": "http://a.com/t/{{t}}/r"})"));
  std::vector<std::string> out =
      orch::substitute_placeholders(command, R"({"t": ".."})", "call", false, encoder(command));
  EXPECT_TRUE(orch::has_dot_segment(orch::http_request_of(out).url));  // the executor refuses to send it
}

TEST(HttpRequest, AValueIsNeverReadAsATemplate) {
  std::vector<std::string> command = orch::http_command(
      parse(R"({"url": "http://a.com/", "headers": {"X-A": "{{a}}", "X-B": "{{tasks.t.output}}"},
                "body": {"v": "{{a}}"}})"));
  // A header would carry "{{tasks.t.output}}" to the next step: refused.
  EXPECT_THROW(orch::substitute_placeholders(command, R"({"a": "{{tasks.t.output}}"})", "call", false,
                                             encoder(command)),
               InvalidInput);
  // In a JSON body "{" is escaped: no later step can see a placeholder.
  std::vector<std::string> body_only = orch::http_command(parse(R"({"url": "http://a.com/{{tasks.t.output}}",
                                                                   "body": {"v": "{{a}}"}})"));
  std::vector<std::string> out = orch::substitute_placeholders(body_only, R"({"a": "{{tasks.t.output}}"})", "call",
                                                               false, encoder(body_only));
  EXPECT_EQ(json::parse(orch::http_request_of(out).body), json::parse(R"({"v": "{{tasks.t.output}}"})"));
  EXPECT_EQ(orch::http_request_of(out).body.find("{{"), std::string::npos);
  // A command too, while output placeholders are left; without them "{{" is just text.
  EXPECT_THROW(orch::substitute_placeholders({"echo", "{{a}}", "{{tasks.t.output}}"}, R"({"a": "{{x}}"})", "c"),
               InvalidInput);
  EXPECT_EQ(orch::substitute_placeholders({"echo", "{{a}}"}, R"({"a": "{{x}}"})", "c")[1], "{{x}}");
}

TEST(HttpRequest, OutputsAndItemsAreEncodedToo) {
  std::vector<std::string> command =
      orch::http_command(parse(R"({"url": "http://a.com/{{tasks.list.output.dir}}/{{item}}"})"));
  std::vector<std::string> with_outputs =
      orch::substitute_outputs(command, R"({"list": {"dir": "a/b"}})", "call", encoder(command));
  std::vector<std::string> with_item = orch::substitute_item(with_outputs, R"("x y")", 0, "call", encoder(command));
  EXPECT_EQ(orch::http_request_of(with_item).url, "http://a.com/a%2Fb/x%20y");
}

TEST(HttpRequest, ATaskSpecMayBeAnHttpRequest) {
  orch::ProcessTypeSpec spec = orch::parse_process_type(
      R"([{"name": "call", "http": {"url": "http://a.com/x"}, "expect_status": [204], "timeout": "5s",
           "max_retries": 2}])");
  ASSERT_EQ(spec.tasks.size(), 1u);
  EXPECT_EQ(spec.tasks[0].kind, orch::TaskKind::Http);
  EXPECT_FALSE(spec.runs_os_commands());
  EXPECT_EQ(orch::http_request_of(spec.tasks[0].command).expect_status, std::vector<int>{204});
  EXPECT_THROW(orch::parse_process_type(R"([{"name": "c", "http": {"url": "http://a.com"}, "env": {"A": "1"}}])"),
               InvalidInput);
  EXPECT_THROW(orch::parse_process_type(R"([{"name": "c", "command": ["true"], "expect_status": [200]}])"),
               InvalidInput);
  EXPECT_THROW(orch::parse_process_type(R"([{"name": "c", "command": ["true"], "http": {"url": "http://a"}}])"),
               InvalidInput);
}

TEST(HttpRequest, StatusesThatCompleteRetryOrFail) {
  orch::HttpRequest any_2xx = parse(R"({"url": "http://a.com"})");
  EXPECT_TRUE(orch::status_expected(any_2xx, 200));
  EXPECT_TRUE(orch::status_expected(any_2xx, 299));
  EXPECT_FALSE(orch::status_expected(any_2xx, 301));
  orch::HttpRequest listed = parse(R"({"url": "http://a.com"})", "[404]");
  EXPECT_TRUE(orch::status_expected(listed, 404));
  EXPECT_FALSE(orch::status_expected(listed, 200));
  EXPECT_TRUE(orch::status_retryable(503));
  EXPECT_FALSE(orch::status_retryable(404));
  EXPECT_FALSE(orch::status_retryable(302));
}
