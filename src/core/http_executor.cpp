#include "core/http_executor.hpp"

#include <poll.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "core/error.hpp"
#include "core/http_request.hpp"
#include "core/interval.hpp"
#include "core/output_text.hpp"
#include "core/placeholders.hpp"

namespace orch {

namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxHeaders = 100;
constexpr std::size_t kMaxHeaderBytes = 8192;

std::string lower(std::string text) {
  for (char &c : text)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return text;
}

std::string trim(const std::string &text) {
  std::size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string::npos) return "";
  return text.substr(start, text.find_last_not_of(" \t\r\n") - start + 1);
}

// The body as JSON, if it is JSON no deeper than input may be (deeper JSON
// would exhaust the stack when it is written out).
std::optional<json> json_body(const std::string &body) {
  try {
    return json::parse(body, [](int depth, json::parse_event_t, json &) {
      if (depth > kMaxInputDepth) throw InvalidInput("nested too deeply");
      return true;
    });
  } catch (const std::exception &) {
    return std::nullopt;
  }
}

// Strings as a jsonb column can hold them: no NUL, valid UTF-8.
void make_storable(json &value) {
  if (value.is_string()) {
    value = to_database_text(value.get_ref<const std::string &>());
  } else if (value.is_array()) {
    for (json &element : value) make_storable(element);
  } else if (value.is_object()) {
    json storable = json::object();
    for (auto &item : value.items()) {
      make_storable(item.value());
      storable[to_database_text(item.key())] = std::move(item.value());
    }
    value = std::move(storable);
  }
}

}  // namespace

struct HttpExecutor::Request {
  std::uint64_t id = 0;
  CURL *easy = nullptr;
  curl_slist *headers = nullptr;
  HttpRequest request;
  std::chrono::milliseconds timeout{0};
  std::size_t max_output = 0, max_output_data = 0;
  std::string body_head;  // the first max_output_data + 1 bytes: the output's body
  std::string body_tail;  // the last max_output bytes at least: the output text
  std::size_t body_bytes = 0;
  json response_headers = json::object();
  char error[CURL_ERROR_SIZE] = {};

  ~Request() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
  }

  static std::size_t on_body(char *data, std::size_t size, std::size_t count, void *self) {
    auto *request = static_cast<Request *>(self);
    std::size_t bytes = size * count;
    request->body_bytes += bytes;
    if (request->body_head.size() <= request->max_output_data)
      request->body_head.append(data, std::min(bytes, request->max_output_data + 1 - request->body_head.size()));
    request->body_tail.append(data, bytes);
    if (request->body_tail.size() > 2 * request->max_output + 4096)
      request->body_tail.erase(0, request->body_tail.size() - request->max_output);
    return bytes;
  }

  // One line of the response's head: a status line starts a response (after
  // a 100 Continue, the next one), the others are "Name: value".
  static std::size_t on_header(char *data, std::size_t size, std::size_t count, void *self) {
    auto *request = static_cast<Request *>(self);
    std::string line(data, size * count);
    if (line.compare(0, 5, "HTTP/") == 0) {
      request->response_headers = json::object();
    } else if (std::size_t colon = line.find(':'); colon != std::string::npos &&
                                                   request->response_headers.size() < kMaxHeaders &&
                                                   line.size() <= kMaxHeaderBytes) {
      request->response_headers[to_database_text(lower(trim(line.substr(0, colon))))] =
          to_database_text(trim(line.substr(colon + 1)));
    }
    return size * count;
  }

  // What the attempt's transfer came to.
  AttemptEnd end(CURLcode result) {
    AttemptEnd end;
    end.id = id;
    if (result == CURLE_OPERATION_TIMEDOUT && timeout.count() > 0) {
      end.ending = Ending::TimedOut;
      end.error = "timed out after " + format_interval(timeout);
      return end;
    }
    if (result != CURLE_OK) {
      end.ending = Ending::Failed;
      end.error = std::string(curl_easy_strerror(result)) + (error[0] != '\0' ? std::string(": ") + error : "");
      return end;
    }
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    end.output = body_tail.size() > max_output ? body_tail.substr(body_tail.size() - max_output) : body_tail;
    end.output_truncated = body_bytes > end.output.size();
    json output = {{"status", status}, {"headers", response_headers}, {"body", nullptr}};
    if (body_bytes <= max_output_data) {
      std::string type = response_headers.value("content-type", "");
      std::optional<json> parsed = type.find("json") != std::string::npos ? json_body(body_head) : std::nullopt;
      output["body"] = parsed && !parsed->is_null() ? std::move(*parsed) : json(body_head);
      make_storable(output["body"]);
    }
    std::string text = output.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() > max_output_data) {  // the body did not fit beside the headers
      output["body"] = nullptr;
      text = output.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    end.output_data = text;
    if (status_expected(request, status)) {
      end.ending = Ending::Succeeded;
    } else {
      end.ending = status_retryable(status) ? Ending::Failed : Ending::Rejected;
      std::string expected;
      for (int s : request.expect_status) expected += (expected.empty() ? "" : ", ") + std::to_string(s);
      end.error = "HTTP status " + std::to_string(status) + " (expected " + (expected.empty() ? "2xx" : expected) + ")";
    }
    return end;
  }
};

HttpExecutor::HttpExecutor() {
  static std::once_flag initialized;
  std::call_once(initialized, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw std::runtime_error("libcurl failed to initialize");
  });
  multi_ = curl_multi_init();
  if (multi_ == nullptr) throw std::runtime_error("libcurl failed to make a multi handle");
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &HttpExecutor::on_socket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &HttpExecutor::on_timer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
}

HttpExecutor::~HttpExecutor() {
  abandon_all();
  curl_multi_cleanup(multi_);
}

int HttpExecutor::on_socket(void *, int fd, int what, void *executor, void *) {
  auto *self = static_cast<HttpExecutor *>(executor);
  if (what == CURL_POLL_REMOVE)
    self->sockets_.erase(fd);
  else
    self->sockets_[fd] = what;
  return 0;
}

int HttpExecutor::on_timer(CURLM *, long timeout_ms, void *executor) {
  auto *self = static_cast<HttpExecutor *>(executor);
  if (timeout_ms < 0)
    self->timer_.reset();
  else
    self->timer_ = SteadyClock().now() + std::chrono::milliseconds(timeout_ms);
  return 0;
}

Launch HttpExecutor::launch(const TaskLaunch &task, SteadyTime) {
  auto request = std::make_unique<Request>();
  request->id = task.id;
  request->timeout = task.timeout;
  request->max_output = max_output_;
  request->max_output_data = max_output_data_;
  // Nothing started: the next poll() reports why.
  auto refuse = [&](Ending ending, const std::string &why) {
    AttemptEnd refused;
    refused.id = task.id;
    refused.ending = ending;
    refused.error = why;
    ended_.push_back(refused);
    return Launch{LaunchStatus::Failed, 0, ""};
  };
  try {
    request->request = http_request_of(task.command);
    if (has_dot_segment(request->request.url))
      return refuse(Ending::Rejected, "a value put a \".\" or \"..\" segment into the url's path");
  } catch (const InvalidInput &) {
    return refuse(Ending::Rejected, "not an http request");
  }
  const HttpRequest &http = request->request;
  CURL *easy = request->easy = curl_easy_init();
  if (easy == nullptr) return refuse(Ending::Failed, "libcurl could not make a request handle");
  curl_easy_setopt(easy, CURLOPT_URL, http.url.c_str());
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L);  // sent as checked and recorded
  curl_easy_setopt(easy, CURLOPT_QUICK_EXIT, 1L);  // never wait for a slow name lookup's thread
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "pg_orch");
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, request->error);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(task.timeout.count()));
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Request::on_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, request.get());
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Request::on_header);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, request.get());
  curl_easy_setopt(easy, CURLOPT_PRIVATE, request.get());
  if (http.method == "HEAD")
    curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
  else if (http.method != "GET" || http.body_format != HttpBody::None)
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, http.method.c_str());
  bool has_content_type = false;
  for (const auto &[name, value] : http.headers) {
    has_content_type = has_content_type || lower(name) == "content-type";
    request->headers = curl_slist_append(request->headers, (name + ": " + value).c_str());
  }
  request->headers = curl_slist_append(request->headers, "Expect:");  // no 100-continue round trip
  if (http.body_format != HttpBody::None) {
    if (!has_content_type)
      request->headers = curl_slist_append(request->headers, "Content-Type: text/plain; charset=utf-8");
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(http.body.size()));
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, http.body.c_str());  // request->request outlives the transfer
  }
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, request->headers);
  if (curl_multi_add_handle(multi_, easy) != CURLM_OK) return refuse(Ending::Failed, "libcurl could not add the request");
  std::string name = http.method + " " + http.url;
  requests_[task.id] = std::move(request);
  return {LaunchStatus::Running, 0, name};
}

void HttpExecutor::remove(std::uint64_t id) noexcept {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  curl_multi_remove_handle(multi_, it->second->easy);
  requests_.erase(it);
}

void HttpExecutor::stop(std::uint64_t id, SteadyTime) {
  if (requests_.count(id) == 0) return;
  remove(id);
  AttemptEnd stopped;
  stopped.id = id;
  stopped.ending = Ending::Stopped;
  stopped.error = "stopped";
  ended_.push_back(stopped);
}

std::vector<AttemptEnd> HttpExecutor::poll(SteadyTime now) {
  std::vector<AttemptEnd> ended;
  ended.swap(ended_);
  if (requests_.empty()) return ended;
  // Which of curl's sockets are ready, without waiting.
  std::vector<pollfd> fds;
  for (const auto &[fd, what] : sockets_) {
    short events = static_cast<short>((what & CURL_POLL_IN ? POLLIN : 0) | (what & CURL_POLL_OUT ? POLLOUT : 0));
    fds.push_back(pollfd{fd, events, 0});
  }
  int running = 0;
  if (!fds.empty() && ::poll(fds.data(), fds.size(), 0) > 0) {
    for (const pollfd &fd : fds) {
      if (fd.revents == 0) continue;
      int action = (fd.revents & (POLLIN | POLLHUP) ? CURL_CSELECT_IN : 0) | (fd.revents & POLLOUT ? CURL_CSELECT_OUT : 0) |
                   (fd.revents & (POLLERR | POLLNVAL) ? CURL_CSELECT_ERR : 0);
      curl_multi_socket_action(multi_, fd.fd, action, &running);
    }
  }
  if (timer_ && *timer_ <= now) {
    timer_.reset();
    curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
  }
  int queued = 0;
  while (CURLMsg *message = curl_multi_info_read(multi_, &queued)) {
    if (message->msg != CURLMSG_DONE) continue;
    Request *request = nullptr;
    curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &request);
    CURLcode result = message->data.result;  // (message is invalid once the handle is removed)
    ended.push_back(request->end(result));
    remove(request->id);
  }
  return ended;
}

std::vector<Watch> HttpExecutor::descriptors() const {
  std::vector<Watch> watches;
  for (const auto &[fd, what] : sockets_) watches.push_back({fd, (what & CURL_POLL_OUT) != 0});
  return watches;
}

void HttpExecutor::abandon_all() noexcept {
  while (!requests_.empty()) remove(requests_.begin()->first);
  ended_.clear();
  sockets_.clear();
  timer_.reset();
}

}  // namespace orch
