#include "loadgen/scrape/prometheus_text.h"

#include <cmath>
#include <cstdlib>

namespace loadgen {

namespace {

bool name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; }
bool name_char(char c) { return name_start(c) || std::isdigit(static_cast<unsigned char>(c)); }

class LineParser {
 public:
  LineParser(std::string_view line, int number) : s_(line), n_(number) {}

  results::MetricSample sample() {
    results::MetricSample m;
    m.name = name("metric name");
    skip_space();
    if (peek() == '{') labels(m.labels);
    skip_space();
    m.value = number();
    skip_space();
    if (pos_ < s_.size()) {  // an optional timestamp (ms since the epoch): checked, not kept
      const size_t start = pos_;
      if (peek() == '-') ++pos_;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      if (pos_ == start) fail("expected a timestamp after the value");
      skip_space();
      if (pos_ < s_.size()) fail("unexpected text after the sample");
    }
    return m;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw PrometheusParseError("line " + std::to_string(n_) + ": " + why + " (at column " + std::to_string(pos_ + 1) +
                               ": '" + std::string(s_.substr(0, 120)) + "')");
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }
  std::string name(const char* what) {
    if (!name_start(peek())) fail(std::string("expected a ") + what);
    const size_t start = pos_;
    while (pos_ < s_.size() && name_char(s_[pos_])) ++pos_;
    return std::string(s_.substr(start, pos_ - start));
  }
  void labels(std::map<std::string, std::string>& out) {
    ++pos_;  // '{'
    for (;;) {
      skip_space();
      if (peek() == '}') {
        ++pos_;
        return;
      }
      const std::string key = name("label name");
      skip_space();
      if (peek() != '=') fail("expected '=' after label " + key);
      ++pos_;
      skip_space();
      if (peek() != '"') fail("expected '\"' to open the value of label " + key);
      ++pos_;
      std::string value;
      for (;;) {
        if (pos_ >= s_.size()) fail("the value of label " + key + " is not closed");
        const char c = s_[pos_++];
        if (c == '"') break;
        if (c != '\\') {
          value.push_back(c);
          continue;
        }
        if (pos_ >= s_.size()) fail("the value of label " + key + " ends in a backslash");
        const char e = s_[pos_++];
        value.push_back(e == 'n' ? '\n' : e);  // \\ and \" stand for themselves; others are kept literally
        if (e != 'n' && e != '\\' && e != '"') value.insert(value.size() - 1, 1, '\\');
      }
      out[key] = std::move(value);
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') fail("expected ',' or '}' after the value of label " + key);
    }
  }
  double number() {
    const size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != ' ' && s_[pos_] != '\t') ++pos_;
    const std::string text(s_.substr(start, pos_ - start));
    if (text.empty()) fail("expected a value");
    if (text == "NaN" || text == "nan") return std::nan("");
    if (text == "+Inf" || text == "Inf" || text == "+inf" || text == "inf") return INFINITY;
    if (text == "-Inf" || text == "-inf") return -INFINITY;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) fail("'" + text + "' is not a number");
    return v;
  }

  std::string_view s_;
  int n_;
  size_t pos_ = 0;
};

// "# TYPE name kind": the family's kind.
void type_line(std::string_view rest, std::map<std::string, std::string>& types) {
  const size_t sp = rest.find_first_of(" \t");
  if (sp == std::string_view::npos) return;
  std::string_view kind = rest.substr(sp + 1);
  while (!kind.empty() && (kind.front() == ' ' || kind.front() == '\t')) kind.remove_prefix(1);
  while (!kind.empty() && (kind.back() == ' ' || kind.back() == '\t')) kind.remove_suffix(1);
  types[std::string(rest.substr(0, sp))] = std::string(kind);
}

}  // namespace

PrometheusPage parse_prometheus_text(std::string_view text) {
  PrometheusPage page;
  int number = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t b = 0;
    while (b < line.size() && (line[b] == ' ' || line[b] == '\t')) ++b;
    line.remove_prefix(b);
    if (line.empty()) continue;
    if (line.front() == '#') {
      if (line.rfind("# TYPE ", 0) == 0) type_line(line.substr(7), page.types);
      if (line == "# EOF") break;
      continue;  // HELP and any other comment
    }
    page.samples.push_back(LineParser(line, number).sample());
  }
  return page;
}

}  // namespace loadgen
