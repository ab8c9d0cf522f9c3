// HttpClient: libcurl's multi interface driven by ONE event-loop thread on epoll. send() only queues the
// WorkItem and, when the loop sleeps, wakes it (an eventfd); the loop turns queued items into easy handles
// (with --max-connections N, only while fewer than N are open: the rest wait in order, and a request's
// timeout starts when it gets a connection) and hands response bytes to each request's HttpResponse (SSE
// parsing, chunk times). curl tells the loop which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when its
// next timeout is due (CURLMOPT_TIMERFUNCTION); each ready socket is one curl_multi_socket_action that moves
// only the transfer on it. (curl_multi_perform walks every open transfer on each wake-up, so a chunk cost
// grew with the number of open streams.) Thousands of concurrent streams are thousands of sockets in one
// epoll set, not threads.
#include "loadgen/clients/http_client.h"

#include <curl/curl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/cpu_time.h"
#include "common/thread_name.h"
#include "engine/tokenizer.h"
#include "loadgen/clients/http_api.h"
#include "loadgen/clients/http_client_impl.h"
#include "loadgen/clients/http_response.h"

namespace loadgen {
namespace {

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw std::runtime_error("curl_global_init failed");
  });
}

// Each stream holds a socket; the default soft limit (1024) would cap a run at ~1,000 concurrent streams.
void raise_open_files_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t want = lim.rlim_max == RLIM_INFINITY ? rlim_t(1) << 20 : lim.rlim_max;
  if (lim.rlim_cur < want) {
    lim.rlim_cur = want;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace

HttpClient::HttpClient(const HttpClientOptions& options) : options_(options), api_(options.api) {
  const std::string ep = normalize_endpoint(options.endpoint);
  if (api_ == HttpApi::kLlmServing && options.model_name.empty())
    throw std::invalid_argument("--model-name: empty (the <name> of POST /models/<name>/generate)");
  if (options.request_timeout_s < 0) throw std::invalid_argument("--request-timeout: must be >= 0");
  if (options.max_connections < 0) throw std::invalid_argument("--max-connections: must be >= 0");
  ep_ = ep;
  url_ = ep + request_path(api_, options.model_name);
  if (!options.tokenizer.empty()) tokenizer_ = engine::load_tokenizer(options.tokenizer);

  global_init_once();
  raise_open_files_limit();
  multi_ = curl_multi_init();
  if (!multi_) throw std::runtime_error("curl_multi_init failed");
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    const int err = errno;
    if (epoll_fd_ >= 0) close(epoll_fd_);
    if (wake_fd_ >= 0) close(wake_fd_);
    curl_multi_cleanup(multi_);
    throw std::runtime_error(std::string("HTTP client: epoll/eventfd: ") + std::strerror(err));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &HttpClient::socket_cb);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &HttpClient::timer_cb);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  if (options.max_connections > 0) {
    curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(options.max_connections));
  }
  headers_ = curl_slist_append(headers_, "Content-Type: application/json");
  headers_ = curl_slist_append(headers_, "Accept: text/event-stream");
  headers_ = curl_slist_append(headers_, "Expect:");  // no 100-continue round trip for bodies > 1 KiB
  for (const std::string& h : options.access.headers) headers_ = curl_slist_append(headers_, h.c_str());
}

HttpClient::~HttpClient() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) {
    wake();
    thread_.join();
  }
  for (CURL* e : idle_easy_) curl_easy_cleanup(e);
  curl_slist_free_all(headers_);
  curl_multi_cleanup(multi_);  // may still tell socket_cb to forget cached connections' sockets
  close(wake_fd_);
  close(epoll_fd_);
}

void HttpClient::wake() {
  const uint64_t one = 1;
  // EAGAIN: the counter is full, so the loop is woken anyway.
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

int HttpClient::socket_cb(CURL*, curl_socket_t s, int what, void* userp, void* socketp) {
  auto* self = static_cast<HttpClient*>(userp);
  if (what == CURL_POLL_REMOVE) {
    // curl says so before it closes the socket, so the descriptor is still ours to take out of the set.
    epoll_ctl(self->epoll_fd_, EPOLL_CTL_DEL, s, nullptr);
    curl_multi_assign(self->multi_, s, nullptr);
    return 0;
  }
  epoll_event ev{};
  ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
  ev.data.fd = s;
  // socketp is curl's per-socket slot: non-null once the socket is in the epoll set.
  if (socketp) {
    epoll_ctl(self->epoll_fd_, EPOLL_CTL_MOD, s, &ev);
  } else {
    if (epoll_ctl(self->epoll_fd_, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST)
      epoll_ctl(self->epoll_fd_, EPOLL_CTL_MOD, s, &ev);
    curl_multi_assign(self->multi_, s, self);
  }
  return 0;
}

int HttpClient::timer_cb(CURLM*, long timeout_ms, void* userp) {
  auto* self = static_cast<HttpClient*>(userp);
  self->timer_set_ = timeout_ms >= 0;
  if (self->timer_set_) self->timer_due_ = Clock::now() + std::chrono::milliseconds(timeout_ms);
  return 0;
}

int HttpClient::timer_wait_ms(int cap) const {
  if (!timer_set_) return cap;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(timer_due_ - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, cap));
}

void HttpClient::start(ClientCallbacks* callbacks) {
  if (thread_.joinable()) throw std::logic_error("HttpClient::start called twice");
  callbacks_ = callbacks;
  thread_ = std::thread([this] {
    common::name_this_thread("lg-http-loop");
    loop();
  });
}

void HttpClient::send(const WorkItem& item) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!callbacks_) throw std::logic_error("HttpClient::send before start");
    queue_.push_back(item);
    ++outstanding_;
    wake = sleeping_;
    sleeping_ = false;
  }
  if (wake) this->wake();
}

bool HttpClient::wait_all(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return done_cv_.wait_for(lock, timeout, [&] { return outstanding_ == 0; });
}

std::string HttpClient::describe() const {
  std::string d = std::string("http ") + to_string(api_) + " " + url_;
  if (api_ == HttpApi::kOpenAI || api_ == HttpApi::kOpenAIChat) d += " (model " + options_.model_name + ")";
  return d;
}

bool HttpClient::complete_finished() {
  int left = 0;
  bool any = false;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    void* priv = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
    complete(static_cast<Transfer*>(priv), msg->data.result);
    any = true;
  }
  return any;
}

void HttpClient::start_waiting() {
  const size_t cap = options_.max_connections > 0 ? static_cast<size_t>(options_.max_connections) : SIZE_MAX;
  while (!waiting_.empty() && active_.size() < cap) {
    add_transfer(waiting_.front());
    waiting_.pop_front();
  }
}

void HttpClient::finished_one() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--outstanding_ == 0) done_cv_.notify_all();
}

void HttpClient::loop() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  woke_ = Clock::now();
  auto busy_from = woke_;  // this iteration's start: woke_ moves on within it
  std::deque<WorkItem> batch;
  for (;;) {
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch.swap(queue_);
      stopping = stopping_;
      sleeping_ = false;
    }
    if (stopping) {
      // The client is being destroyed: every request still owes its on_done.
      batch.insert(batch.begin(), waiting_.begin(), waiting_.end());
      waiting_.clear();
      for (const WorkItem& item : batch) {
        HttpResponse r(item.index, callbacks_, nullptr);
        callbacks_->on_sent(item.index, Clock::now());
        callbacks_->on_done(item.index, r.fail("client stopped"), Clock::now());
        finished_one();
      }
      while (!active_.empty()) {
        Transfer* tr = active_.begin()->second.get();
        std::snprintf(tr->errbuf, sizeof tr->errbuf, "client stopped");
        complete(tr, CURLE_ABORTED_BY_CALLBACK);
      }
      return;
    }
    for (WorkItem& item : batch) waiting_.push_back(std::move(item));
    batch.clear();
    start_waiting();  // new handles set curl's timer to 0: the next wait returns at once and starts them

    // Sleeps until a socket is ready, curl's timer is due, or send()/~HttpClient writes the eventfd. The
    // 1 s cap only bounds a lost wake-up; nothing relies on it.
    int wait_ms = timer_wait_ms(1000);
    if (wait_ms > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!queue_.empty() || stopping_) wait_ms = 0;
      else sleeping_ = true;
    }
    const auto idle_from = Clock::now();
    busy_ns_.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(idle_from - busy_from).count(),
                       std::memory_order_relaxed);
    const int n = epoll_wait(epoll_fd_, events, kMaxEvents, wait_ms);
    woke_ = busy_from = Clock::now();

    int running = 0;
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        uint64_t count;
        [[maybe_unused]] const ssize_t r = ::read(wake_fd_, &count, sizeof count);
        continue;
      }
      const uint32_t e = events[i].events;
      const int flags = (e & EPOLLIN ? CURL_CSELECT_IN : 0) | (e & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                        (e & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
      curl_multi_socket_action(multi_, fd, flags, &running);
    }
    if (timer_set_ && timer_wait_ms(1) == 0) {
      timer_set_ = false;  // curl sets it again from within the call if it wants another
      curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    // The connections a completion freed take the next waiting requests now, not after a sleep. Their
    // handles are started by the timeout their adding sets, which the next epoll_wait(0) turns into an
    // action; bytes it reads are stamped with that wake-up.
    if (complete_finished()) start_waiting();
  }
}

std::string normalize_endpoint(const std::string& endpoint) {
  std::string ep = endpoint;
  if (ep.rfind("http://", 0) != 0 && ep.rfind("https://", 0) != 0)
    throw std::invalid_argument("--endpoint: '" + ep + "' must start with http:// or https://");
  while (!ep.empty() && ep.back() == '/') ep.pop_back();
  if (ep.find('/', ep.find("//") + 2) != std::string::npos)
    throw std::invalid_argument("--endpoint: '" + endpoint + "' must be http://host:port with no path");
  if (ep.size() <= ep.find("//") + 2) throw std::invalid_argument("--endpoint: '" + endpoint + "' has no host");
  return ep;
}

std::unique_ptr<Client> make_http_client(const HttpClientOptions& options) {
  return std::make_unique<HttpClient>(options);
}

}  // namespace loadgen
