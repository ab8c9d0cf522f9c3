#include "loadgen/clients/http_call.h"

#include <curl/curl.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace loadgen {

namespace {

std::string trim(std::string s) {
  const size_t b = s.find_first_not_of(" \t");
  const size_t e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

size_t append_body(char* data, size_t size, size_t nmemb, void* userp) {
  auto* body = static_cast<std::string*>(userp);
  const size_t n = size * nmemb;
  if (body->size() < (16u << 20)) body->append(data, n);  // a /metrics page is KBs; bound a broken one
  return n;
}

}  // namespace

std::vector<std::string> request_headers(const std::vector<std::string>& user_headers, const std::string& api_key) {
  std::vector<std::string> out;
  bool has_auth = false;
  for (const std::string& h : user_headers) {
    const size_t colon = h.find(':');
    const std::string name = colon == std::string::npos ? "" : trim(h.substr(0, colon));
    if (name.empty() || name.find_first_of(" \t\r\n") != std::string::npos)
      throw std::invalid_argument("--header '" + h + "': expected 'Name: value'");
    if (h.find_first_of("\r\n") != std::string::npos)
      throw std::invalid_argument("--header '" + h + "': a header is one line");
    if (lower(name) == "authorization") has_auth = true;
    out.push_back(name + ": " + trim(h.substr(colon + 1)));
  }
  if (!api_key.empty() && !has_auth) out.push_back("Authorization: Bearer " + api_key);
  return out;
}

std::string HttpAnswer::describe() const {
  if (!error.empty()) return error;
  std::string b = body.substr(0, 200);
  for (char& c : b)
    if (c == '\n' || c == '\r') c = ' ';
  return "HTTP " + std::to_string(status) + (b.empty() ? "" : ": " + b);
}

HttpAnswer http_call(const std::string& method, const std::string& url, const std::string& body,
                     const HttpAccess& access, double timeout_s) {
  HttpAnswer a;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), &curl_easy_cleanup);
  if (!easy) {
    a.error = "curl_easy_init failed";
    return a;
  }
  CURL* e = easy.get();
  curl_slist* headers = nullptr;
  for (const std::string& h : access.headers) headers = curl_slist_append(headers, h.c_str());
  if (method == "POST") headers = curl_slist_append(headers, "Content-Type: application/json");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> hold(headers, &curl_slist_free_all);
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_s * 1000.0));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_s * 1000.0));
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &append_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &a.body);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
  if (access.insecure) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (method == "POST") {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  const CURLcode code = curl_easy_perform(e);
  if (code != CURLE_OK) {
    a.error = std::string(errbuf[0] ? errbuf : curl_easy_strerror(code));
    return a;
  }
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &a.status);
  return a;
}

std::string first_served_model(const std::string& endpoint, const HttpAccess& access, double timeout_s) {
  const std::string url = endpoint + "/v1/models";
  const HttpAnswer a = http_call("GET", url, "", access, timeout_s);
  const std::string what = "--model-name not given, and GET " + url + " ";
  if (!a.ok()) throw std::runtime_error(what + "failed: " + a.describe() + " (give --model-name)");
  const nlohmann::json j = nlohmann::json::parse(a.body, nullptr, false);
  if (j.is_object()) {
    auto data = j.find("data");
    if (data != j.end() && data->is_array() && !data->empty() && (*data)[0].is_object()) {
      auto id = (*data)[0].find("id");
      if (id != (*data)[0].end() && id->is_string() && !id->get<std::string>().empty()) return id->get<std::string>();
    }
  }
  throw std::runtime_error(what + "listed no model: " + a.body.substr(0, 200) + " (give --model-name)");
}

void reset_prefix_cache(const std::string& endpoint, const HttpAccess& access, double timeout_s) {
  const std::string url = endpoint + "/reset_prefix_cache";
  const HttpAnswer a = http_call("POST", url, "", access, timeout_s);
  if (!a.ok()) throw std::runtime_error("--reset-prefix-cache: POST " + url + " failed: " + a.describe());
}

}  // namespace loadgen
