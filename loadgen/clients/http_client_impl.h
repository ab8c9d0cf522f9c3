// HttpClient (http_client.h: make_http_client), shared by the two files that define it: http_client.cc (the
// event loop: curl's multi interface on epoll, the queue, --max-connections) and http_transfer.cc (one request's
// transfer: its easy handle, the body and sent-time callbacks, its end as an Outcome). Not for use outside
// loadgen/clients/.
#pragma once

#include <curl/curl.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/cpu_time.h"
#include "engine/tokenizer.h"
#include "loadgen/clients/http_api.h"
#include "loadgen/clients/http_client.h"
#include "loadgen/clients/http_response.h"

namespace loadgen {

/// Short, countable reasons for a transfer that failed below HTTP: the summary groups failures by this string.
std::string transport_reason(CURLcode code, long os_errno, const char* errbuf, double timeout_s);

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

}  // namespace loadgen
