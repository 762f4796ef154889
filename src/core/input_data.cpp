#include "core/input_data.hpp"

#include <set>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace orch {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

class Parser {
 public:
  explicit Parser(const std::string &text) : s_(text) {}

  InputPairs parse() {
    InputPairs pairs;
    std::set<std::string> keys;
    while (pos_ < s_.size()) {
      while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
      std::size_t item_start = pos_;
      if (pos_ == s_.size()) break;  // only whitespace after the last ';'
      // Key: up to the first unescaped ':'; trailing unescaped whitespace
      // is trimmed, escaped characters never are.
      std::string key;
      std::size_t key_keep = 0;  // key length without trailing whitespace
      bool found_colon = false;
      while (pos_ < s_.size()) {
        char c = s_[pos_];
        if (c == '\0') fail(pos_, "NUL byte not allowed");
        if (c == ';') break;
        if (c == ':') {
          found_colon = true;
          ++pos_;
          break;
        }
        key += read_char();
        if (!is_space(c)) key_keep = key.size();
      }
      if (!found_colon) fail(item_start, "expected \"key:value\"");
      key.resize(key_keep);
      if (key.empty()) fail(item_start, "empty key");
      std::string value;
      while (pos_ < s_.size() && s_[pos_] != ';') {
        if (s_[pos_] == '\0') fail(pos_, "NUL byte not allowed");
        value += read_char();
      }
      if (!keys.insert(key).second) fail(item_start, "duplicate key " + quote(key));
      pairs.emplace_back(std::move(key), std::move(value));
      if (pos_ < s_.size()) ++pos_;  // the ';'
    }
    return pairs;
  }

 private:
  // One character of a key or value, resolving \; \: and \\ .
  char read_char() {
    char c = s_[pos_++];
    if (c == '\\' && pos_ < s_.size() && (s_[pos_] == ';' || s_[pos_] == ':' || s_[pos_] == '\\')) return s_[pos_++];
    return c;
  }

  // Character (not byte) position, 1-based, so multibyte UTF-8 text counts
  // as the user sees it.
  [[noreturn]] void fail(std::size_t byte_pos, const std::string &what) const {
    std::size_t chars = 1;
    for (std::size_t i = 0; i < byte_pos && i < s_.size(); ++i)
      if ((static_cast<unsigned char>(s_[i]) & 0xC0) != 0x80) ++chars;
    throw InvalidInput("invalid input data at character " + std::to_string(chars) + ": " + what);
  }

  const std::string &s_;
  std::size_t pos_ = 0;
};

}  // namespace

InputPairs parse_input_data(const std::string &text) { return Parser(text).parse(); }

std::string input_data_to_json(const std::string &text) {
  nlohmann::json object = nlohmann::json::object();
  for (auto &[key, value] : parse_input_data(text)) object[key] = value;
  try {
    return object.dump();
  } catch (const nlohmann::json::type_error &) {
    throw InvalidInput("input data is not valid UTF-8");
  }
}

std::string format_input_data(const InputPairs &pairs) {
  std::string out;
  for (const auto &[key, value] : pairs) {
    if (!out.empty()) out += ';';
    for (char c : key) {
      if (c == ';' || c == ':' || c == '\\') out += '\\';
      out += c;
    }
    out += ':';
    for (char c : value) {
      if (c == ';' || c == '\\') out += '\\';
      out += c;
    }
  }
  return out;
}

}  // namespace orch
