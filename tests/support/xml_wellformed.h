// A strict little well-formedness checker for the SVG and (XHTML-style) HTML the report writers produce:
// balanced tags, quoted attributes, valid entities, one root element, and every numeric geometry attribute
// (x, y, width, r, path data, ...) a finite number. Not a general XML parser: no DTDs, no CDATA, no namespaces
// beyond passing xmlns through. Returns "" when well-formed, else the first problem and its byte offset.
#pragma once

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace xml_check {

inline bool valid_entity(std::string_view s, size_t amp, size_t* end) {
  const size_t semi = s.find(';', amp);
  if (semi == std::string_view::npos || semi - amp > 10) return false;
  const std::string_view name = s.substr(amp + 1, semi - amp - 1);
  *end = semi + 1;
  if (name == "amp" || name == "lt" || name == "gt" || name == "quot" || name == "apos") return true;
  if (name.size() >= 2 && name[0] == '#') {
    for (size_t i = 1; i < name.size(); ++i)
      if (!std::isdigit(static_cast<unsigned char>(name[i]))) return false;
    return true;
  }
  return false;
}

/// Every number in an attribute value must be finite ("nan"/"inf" would make a browser drop the element).
inline bool finite_numbers(std::string_view v) {
  std::string s(v);
  const char* p = s.c_str();
  while (*p) {
    if (std::isalpha(static_cast<unsigned char>(*p))) {  // a word: path command, "translate", or "nan"
      std::string word;
      while (std::isalpha(static_cast<unsigned char>(*p))) word += static_cast<char>(std::tolower(*p++));
      if (word.find("nan") != std::string::npos || word.find("inf") != std::string::npos) return false;
      continue;
    }
    if (*p == ',' || *p == ' ' || *p == '(' || *p == ')') {
      ++p;
      continue;
    }
    char* end = nullptr;
    const double d = std::strtod(p, &end);
    if (end == p) return false;
    if (!std::isfinite(d)) return false;
    p = end;
  }
  return true;
}

inline std::string check(std::string_view s) {
  static const std::set<std::string> numeric = {"x",  "y",  "x1", "y1", "x2",     "y2",       "cx",
                                                "cy", "r",  "width", "height", "d", "viewBox", "transform"};
  std::vector<std::string> stack;
  int roots = 0;
  size_t i = 0;
  auto fail = [&](const std::string& what) { return what + " at offset " + std::to_string(i); };
  while (i < s.size()) {
    if (s[i] == '&') {
      size_t end;
      if (!valid_entity(s, i, &end)) return fail("bad entity");
      i = end;
      continue;
    }
    if (s[i] == '>' ) return fail("stray '>'");
    if (s[i] != '<') {
      ++i;
      continue;
    }
    if (s.substr(i, 4) == "<!--") {
      const size_t end = s.find("-->", i);
      if (end == std::string_view::npos) return fail("unterminated comment");
      i = end + 3;
      continue;
    }
    if (s.substr(i, 2) == "<!" || s.substr(i, 2) == "<?") {  // <!DOCTYPE html>, <?xml ...?>
      const size_t end = s.find('>', i);
      if (end == std::string_view::npos) return fail("unterminated declaration");
      i = end + 1;
      continue;
    }
    const bool closing = s[i + 1] == '/';
    size_t j = i + (closing ? 2 : 1);
    const size_t name_start = j;
    while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '-' || s[j] == ':')) ++j;
    const std::string name(s.substr(name_start, j - name_start));
    if (name.empty()) return fail("tag without a name");
    if (closing) {
      while (j < s.size() && s[j] == ' ') ++j;
      if (j >= s.size() || s[j] != '>') return fail("bad closing tag </" + name);
      if (stack.empty() || stack.back() != name)
        return fail("</" + name + "> closes <" + (stack.empty() ? std::string("nothing") : stack.back()) + ">");
      stack.pop_back();
      i = j + 1;
      continue;
    }
    // Attributes: name="value" (no '<' inside values, entities valid).
    std::set<std::string> seen;
    for (;;) {
      while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j >= s.size()) return fail("unterminated tag <" + name);
      if (s[j] == '>' || s.substr(j, 2) == "/>") break;
      const size_t a0 = j;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '-' || s[j] == ':')) ++j;
      const std::string attr(s.substr(a0, j - a0));
      if (attr.empty() || j + 1 >= s.size() || s[j] != '=' || (s[j + 1] != '"' && s[j + 1] != '\''))
        return fail("attribute without a quoted value in <" + name);
      if (!seen.insert(attr).second) return fail("duplicate attribute " + attr);
      const char q = s[j + 1];
      const size_t v0 = j + 2, v1 = s.find(q, v0);
      if (v1 == std::string_view::npos) return fail("unterminated attribute " + attr);
      const std::string_view value = s.substr(v0, v1 - v0);
      if (value.find('<') != std::string_view::npos) return fail("'<' in attribute " + attr);
      for (size_t k = 0; k < value.size(); ++k) {
        size_t end;
        if (value[k] == '&' && !valid_entity(value, k, &end)) return fail("bad entity in attribute " + attr);
      }
      if (numeric.count(attr) && !finite_numbers(value)) return fail("non-finite number in " + attr + "=\"" +
                                                                     std::string(value) + "\"");
      j = v1 + 1;
    }
    const bool self_closing = s[j] == '/';
    if (stack.empty()) ++roots;
    if (!self_closing) stack.push_back(name);
    i = j + (self_closing ? 2 : 1);
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  if (roots != 1) return "expected one root element, found " + std::to_string(roots);
  return "";
}

}  // namespace xml_check
