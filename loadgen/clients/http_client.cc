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
#include "loadgen/clients/http_api.h"
#include "loadgen/clients/http_response.h"
#include "engine/tokenizer.h"

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

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

/// Short, countable reasons: the summary groups failures by this string.
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

class HttpClient final : public Client {
 public:
  explicit HttpClient(const HttpClientOptions& options);
  ~HttpClient() override;

  void start(ClientCallbacks* callbacks) override;
  void send(const WorkItem& item) override;
  bool wait_all(std::chrono::milliseconds timeout) override;
  std::string describe() const override;
  double busy_seconds() const override { return static_cast<double>(busy_ns_.load()) * 1e-9; }
  double cpu_seconds() const override {
    return thread_.joinable() ? common::thread_cpu_seconds(const_cast<std::thread&>(thread_).native_handle()) : -1;
  }

 private:
  struct Transfer {
    Transfer(HttpClient* c, uint64_t index) : client(c), index(index), response(index, c->callbacks_, c->tokenizer_.get()) {}
    HttpClient* client;
    uint64_t index;
    CURL* easy = nullptr;
    std::string body;
    std::string url;
    HttpResponse response;
    Clock::time_point added{};
    bool sent_reported = false;
    Clock::time_point sent_at{};  ///< what on_sent was given
    char errbuf[CURL_ERROR_SIZE] = {0};
  };

  static size_t write_cb(char* data, size_t size, size_t nmemb, void* userp);
  static int prereq_cb(void* clientp, char*, char*, int, int);
  /// curl: watch socket s for `what` (CURL_POLL_IN/OUT/INOUT), or stop watching it (CURL_POLL_REMOVE).
  static int socket_cb(CURL*, curl_socket_t s, int what, void* userp, void* socketp);
  /// curl: call socket_action(CURL_SOCKET_TIMEOUT) in timeout_ms (-1: no timer).
  static int timer_cb(CURLM*, long timeout_ms, void* userp);
  void loop();
  /// Writes the eventfd: the loop's epoll_wait returns.
  void wake();
  void add_transfer(const WorkItem& item);
  void complete(Transfer* tr, CURLcode code);
  void finished_one();
  /// Moves waiting_ items into curl while fewer than --max-connections transfers are in it.
  void start_waiting();
  /// Completes every transfer curl has finished; whether there was any.
  bool complete_finished();
  /// Milliseconds until curl's timer is due (0: due now), or `cap` when it is further off or unset.
  int timer_wait_ms(int cap) const;

  HttpClientOptions options_;
  HttpApi api_;
  std::string url_;
  std::string ep_;                 ///< http://host:port
  std::unique_ptr<engine::Tokenizer> tokenizer_;
  ClientCallbacks* callbacks_ = nullptr;

  CURLM* multi_ = nullptr;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;               ///< eventfd in the epoll set: send() and ~HttpClient wake the loop with it
  bool timer_set_ = false;         ///< curl wants socket_action(CURL_SOCKET_TIMEOUT) at timer_due_ (loop thread)
  Clock::time_point timer_due_{};
  curl_slist* headers_ = nullptr;
  std::vector<CURL*> idle_easy_;   ///< finished handles, reset and reused (loop thread only)
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> active_;  ///< loop thread only
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable done_cv_;
  std::deque<WorkItem> queue_;     ///< sent, not yet picked up by the loop
  /// Picked up, waiting for one of --max-connections (loop thread only). Kept here rather than as easy handles
  /// in curl's pending list: curl walks its pending handles on each add and remove, so a backlog of
  /// thousands (-X inf, an overloaded server) made each completion cost in proportion to the backlog.
  std::deque<WorkItem> waiting_;
  bool stopping_ = false;
  bool sleeping_ = false;          ///< the loop is in (or entering) epoll_wait with nothing queued: wake it
  int64_t outstanding_ = 0;        ///< sent and not yet on_done
  /// When the loop last woke from its poll: the arrival time of every chunk it then reads (loop thread only).
  Clock::time_point woke_ = Clock::now();
  std::atomic<int64_t> busy_ns_{0};  ///< the loop's time outside epoll_wait
};

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

}  // namespace

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
