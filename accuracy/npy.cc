#include "accuracy/npy.h"

#include <cctype>
#include <cstring>
#include <fstream>
#include <iterator>

#include "accuracy/float16.h"
#include "accuracy/text.h"

namespace accuracy {
namespace {

constexpr char kMagic[] = "\x93NUMPY";

// The value after 'key': in the header dict, as raw text up to the next top-level ',' or '}'.
std::string dict_value(const std::string& header, const std::string& key, const std::string& path) {
  const std::string quoted[] = {"'" + key + "'", "\"" + key + "\""};
  size_t pos = std::string::npos;
  for (const auto& q : quoted)
    if ((pos = header.find(q)) != std::string::npos) {
      pos += q.size();
      break;
    }
  if (pos == std::string::npos) throw NpyError(cat(path, ": header has no '", key, "'"));
  pos = header.find(':', pos);
  if (pos == std::string::npos) throw NpyError(cat(path, ": header field '", key, "' has no value"));
  ++pos;
  while (pos < header.size() && std::isspace(static_cast<unsigned char>(header[pos]))) ++pos;
  size_t end = pos;
  int depth = 0;
  for (; end < header.size(); ++end) {
    const char c = header[end];
    if (c == '(' || c == '[') ++depth;
    else if (c == ')' || c == ']') --depth;
    else if ((c == ',' || c == '}') && depth == 0) break;
  }
  std::string v = header.substr(pos, end - pos);
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
  return v;
}

std::vector<int64_t> parse_shape(const std::string& v, const std::string& path) {
  if (v.size() < 2 || v.front() != '(' || v.back() != ')') throw NpyError(cat(path, ": shape '", v, "' is not a tuple"));
  std::vector<int64_t> shape;
  std::string num;
  for (size_t i = 1; i < v.size(); ++i) {
    const char c = v[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      num += c;
    } else if (c == ',' || c == ')' || std::isspace(static_cast<unsigned char>(c)) || c == 'L') {
      if (!num.empty()) shape.push_back(std::stoll(num)), num.clear();
    } else {
      throw NpyError(cat(path, ": shape '", v, "' is not a tuple of integers"));
    }
  }
  if (!num.empty()) shape.push_back(std::stoll(num));
  return shape;
}

}  // namespace

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw NpyError(cat(path, ": cannot open"));
  char magic[6];
  unsigned char ver[2];
  if (!in.read(magic, 6) || std::memcmp(magic, kMagic, 6) != 0) throw NpyError(cat(path, ": not a .npy file (no \\x93NUMPY magic)"));
  if (!in.read(reinterpret_cast<char*>(ver), 2)) throw NpyError(cat(path, ": truncated header"));
  uint32_t header_len = 0;
  unsigned char len[4] = {0, 0, 0, 0};
  if (ver[0] == 1) {
    if (!in.read(reinterpret_cast<char*>(len), 2)) throw NpyError(cat(path, ": truncated header"));
    header_len = len[0] | (len[1] << 8);
  } else if (ver[0] == 2 || ver[0] == 3) {
    if (!in.read(reinterpret_cast<char*>(len), 4)) throw NpyError(cat(path, ": truncated header"));
    header_len = len[0] | (len[1] << 8) | (len[2] << 16) | (static_cast<uint32_t>(len[3]) << 24);
  } else {
    throw NpyError(cat(path, ": .npy version ", int(ver[0]), ".", int(ver[1]), " is not supported (1-3)"));
  }
  if (header_len > (1u << 24)) throw NpyError(cat(path, ": header length ", header_len, " is not plausible"));
  std::string header(header_len, '\0');
  if (!in.read(header.data(), header_len)) throw NpyError(cat(path, ": truncated header"));

  const std::string descr = dict_value(header, "descr", path);
  const std::string fortran = dict_value(header, "fortran_order", path);
  if (fortran != "False") throw NpyError(cat(path, ": fortran_order is ", fortran, " (only C order is read)"));
  int width;
  if (descr == "'<f4'" || descr == "\"<f4\"") width = 4;
  else if (descr == "'<f2'" || descr == "\"<f2\"") width = 2;
  else throw NpyError(cat(path, ": descr ", descr, " is not supported (little-endian float32 '<f4' or float16 '<f2')"));
  NpyArray a;
  a.shape = parse_shape(dict_value(header, "shape", path), path);
  size_t n = 1;
  for (int64_t d : a.shape) n *= static_cast<size_t>(d);
  std::vector<unsigned char> bytes(n * width);
  if (!bytes.empty() && !in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size())))
    throw NpyError(cat(path, ": data shorter than its shape needs (", n, " values of ", width, " bytes)"));
  a.data.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const unsigned char* b = bytes.data() + i * width;
    if (width == 4) {
      const uint32_t u = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
      std::memcpy(&a.data[i], &u, 4);
    } else {
      a.data[i] = half_to_float(static_cast<uint16_t>(b[0] | (b[1] << 8)));
    }
  }
  return a;
}

void write_npy(const std::string& path, const std::vector<int64_t>& shape, const std::vector<float>& data) {
  std::string dims;  // "3, 4"; a 1-tuple is "3,"
  for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Magic (6) + version (2) + length (2) + header + '\n': a multiple of 64, as numpy writes it.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) throw NpyError(cat(path, ": cannot create"));
  out.write(kMagic, 6);
  const unsigned char ver[2] = {1, 0};
  out.write(reinterpret_cast<const char*>(ver), 2);
  const unsigned char len[2] = {static_cast<unsigned char>(header.size() & 0xff), static_cast<unsigned char>(header.size() >> 8)};
  out.write(reinterpret_cast<const char*>(len), 2);
  out << header;
  for (float f : data) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    const unsigned char b[4] = {static_cast<unsigned char>(u), static_cast<unsigned char>(u >> 8),
                                static_cast<unsigned char>(u >> 16), static_cast<unsigned char>(u >> 24)};
    out.write(reinterpret_cast<const char*>(b), 4);
  }
  if (!out.good()) throw NpyError(cat(path, ": write failed (disk full?)"));
}

}  // namespace accuracy
