// One request's transfer (http_client_impl.h): the easy handle made (or reused) for it, the callbacks curl calls
// as its body arrives and right before it is sent, and its end: the Outcome handed to the callbacks, a transport
// failure named by transport_reason.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>

#include "loadgen/clients/http_client_impl.h"

namespace loadgen {
namespace {

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

}  // namespace

std::string transport_reason(CURLcode code, long os_errno, const char* errbuf, double timeout_s) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
      if (os_errno == ECONNREFUSED) return "connection refused";
      return std::string("could not connect: ") + (errbuf[0] ? errbuf : curl_easy_strerror(code));
    case CURLE_OPERATION_TIMEDOUT:
      return "timeout after " + format_seconds(timeout_s);
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:   // the body ended before its chunked/length end: the server went away
    case CURLE_GOT_NOTHING:    // connection closed before any response
      return "connection reset";
    default:
      return std::string("curl error ") + std::to_string(static_cast<int>(code)) + ": " +
             (errbuf[0] ? errbuf : curl_easy_strerror(code));
  }
}

size_t HttpClient::write_cb(char* data, size_t size, size_t nmemb, void* userp) {
  auto* tr = static_cast<Transfer*>(userp);
  // The chunk arrived on the socket no later than the poll's wake-up; the recorder measures its lag from here.
  // A request sent within this same wake-up (a connection freed, the next one sent, the answer read before
  // the loop polls again) had its answer arrive after it was sent: never stamp a chunk before its request.
  const auto t = std::max(tr->client->woke_, tr->sent_at);
  const size_t n = size * nmemb;
  if (!tr->response.headers_seen()) {
    long status = 0;
    char* ctype = nullptr;
    curl_easy_getinfo(tr->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(tr->easy, CURLINFO_CONTENT_TYPE, &ctype);
    tr->response.on_headers(status, ctype ? ctype : "");
  }
  tr->response.on_body(std::string_view(data, n), t);
  return n;
}

// Called once the connection is up, right before the request goes out: the honest "sent" time.
int HttpClient::prereq_cb(void* clientp, char*, char*, int, int) {
  auto* tr = static_cast<Transfer*>(clientp);
  if (!tr->sent_reported) {
    tr->sent_reported = true;
    tr->sent_at = Clock::now();
    tr->client->callbacks_->on_sent(tr->index, tr->sent_at);
  }
  return CURL_PREREQFUNC_OK;
}

void HttpClient::add_transfer(const WorkItem& item) {
  auto tr = std::make_unique<Transfer>(this, item.index);
  tr->body = request_body(api_, options_.model_name, item);
  tr->response.expect(item);
  tr->url = ep_ + request_path(api_, options_.model_name, item);
  CURL* e;
  if (!idle_easy_.empty()) {
    e = idle_easy_.back();
    idle_easy_.pop_back();
    curl_easy_reset(e);
  } else {
    e = curl_easy_init();
  }
  tr->easy = e;
  curl_easy_setopt(e, CURLOPT_URL, tr->url.c_str());
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers_);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, tr->body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(tr->body.size()));
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &HttpClient::write_cb);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, tr.get());
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, &HttpClient::prereq_cb);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, tr.get());
  curl_easy_setopt(e, CURLOPT_PRIVATE, tr.get());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, tr->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout_s * 1000.0));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout_s * 1000.0));
  if (options_.access.insecure) {  // --insecure: a self-signed test deployment
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  tr->added = Clock::now();
  if (CURLMcode mc = curl_multi_add_handle(multi_, e); mc != CURLM_OK) {
    Transfer* raw = tr.get();
    active_.emplace(e, std::move(tr));
    tr = nullptr;
    std::snprintf(raw->errbuf, sizeof raw->errbuf, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
    complete(raw, CURLE_FAILED_INIT);
    return;
  }
  active_.emplace(e, std::move(tr));
}

void HttpClient::complete(Transfer* tr, CURLcode code) {
  const auto t = Clock::now();
  if (!tr->sent_reported) {
    // Never got a connection: it "left" when we tried, so send lag still shows.
    tr->sent_reported = true;
    tr->sent_at = tr->added;
    callbacks_->on_sent(tr->index, tr->added);
  }
  if (!tr->response.headers_seen() && code == CURLE_OK) {
    long status = 0;
    char* ctype = nullptr;
    curl_easy_getinfo(tr->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(tr->easy, CURLINFO_CONTENT_TYPE, &ctype);
    tr->response.on_headers(status, ctype ? ctype : "");
  }
  Outcome out;
  if (code == CURLE_OK) {
    out = tr->response.finish(t);
  } else {
    long os_errno = 0;
    curl_easy_getinfo(tr->easy, CURLINFO_OS_ERRNO, &os_errno);
    out = tr->response.fail(transport_reason(code, os_errno, tr->errbuf, options_.request_timeout_s));
  }
  const uint64_t index = tr->index;
  CURL* e = tr->easy;
  curl_multi_remove_handle(multi_, e);
  idle_easy_.push_back(e);
  active_.erase(e);  // destroys tr
  callbacks_->on_done(index, out, t);
  finished_one();
}

}  // namespace loadgen
