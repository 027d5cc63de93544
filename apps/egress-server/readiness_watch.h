// Read readiness of idle keep-alive connections, without a failed read per request.
//
// Asio's reactor reads speculatively when a read starts: after an answer, that read finds nothing
// (the client has not even seen the answer) and fails with EAGAIN, about 0.9 times per keep-alive
// request under load (counted with perf on sys_exit_recvfrom). A system call costs ~1 µs on the
// VMs this runs on, close to a tenth of a request. nginx avoids it by taking a short read as
// "drained" and waiting for the next edge; asio offers no such wait (async_wait re-arms with
// epoll_ctl, a call as dear as the read it saves). So a worker keeps an edge-triggered epoll set of
// its own, with each keep-alive socket added once, and its events tell a waiting connection when to
// read. The set itself is one descriptor in asio's loop: one epoll_wait and one re-arm per batch of
// events, not per request.
//
// No edge is lost: an edge that comes while its connection is not waiting marks it ready, and its
// next wait returns at once. A closed socket leaves the set by itself (the kernel drops it on the
// last close); events are matched by connection id, never by pointer, so a late event for a closed
// connection finds nothing.
#pragma once

#include <sys/epoll.h>

#include <array>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <cstdint>
#include <optional>
#include <unordered_map>

namespace tcpsteer::apps {

class ReadinessWatch {
 public:
  // One connection's place in the set.
  struct Entry {
    uint64_t id = 0;       // 0: not in the set yet
    bool ready = false;    // an edge came since the last wait took it
    bool aborted = false;  // cancel() came while not waiting: the next wait fails at once
    // Held in an optional, set by emplace: Boost 1.81's any_completion_handler move-assignment
    // wraps the handler in a new one each time (a chain as long as the requests served).
    std::optional<boost::asio::any_completion_handler<void(boost::system::error_code)>> waiter;
  };

  explicit ReadinessWatch(boost::asio::io_context& io);
  ~ReadinessWatch();
  ReadinessWatch(const ReadinessWatch&) = delete;
  ReadinessWatch& operator=(const ReadinessWatch&) = delete;

  // Adds a socket (once per connection; it is then ready at once if bytes already wait). False:
  // the set is unavailable (creating it failed) or the kernel refused; the caller reads the usual
  // way.
  bool add(Entry& entry, int fd);
  // The entry leaves the set's index (its socket leaves the kernel's set when closed).
  void remove(Entry& entry);

  // Completes with no error once the socket is readable (at once if an edge came since the last
  // wait), or with operation_aborted after cancel().
  template <typename Token>
  auto asyncReadable(Entry& entry, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [this, &entry](auto handler) {
          if (entry.ready || entry.aborted) {
            boost::system::error_code ec;
            if (entry.aborted) ec = boost::asio::error::operation_aborted;
            entry.ready = false;
            entry.aborted = false;
            // Completed through the event loop, not inline: the initiation runs inside the
            // coroutine's own suspension. Every connection of the watch runs on io_'s one thread.
            boost::asio::post(
                io_, [handler = std::move(handler), ec]() mutable { std::move(handler)(ec); });
            return;
          }
          entry.waiter.emplace(std::move(handler));
          armIfIdle();
        },
        token);
  }

  // The read after a wait filled its buffer, so the socket may still hold bytes that no new edge
  // will announce (edge triggering): the next wait completes at once and the caller reads again.
  static void markReadable(Entry& entry) { entry.ready = true; }

  // Ends a pending wait with operation_aborted (a deadline or a drain), through the event loop:
  // the caller may be walking a list the woken connection changes. Without a pending wait, the
  // next wait fails at once.
  void cancel(Entry& entry);

 private:
  void armIfIdle();
  static boost::asio::any_completion_handler<void(boost::system::error_code)> take(Entry& entry);
  void collect();

  boost::asio::io_context& io_;
  boost::asio::posix::stream_descriptor set_;
  bool armed_ = false;
  bool collecting_ = false;  // waits started by connections woken in collect() arm once, after it
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Entry*> entries_;
  std::array<epoll_event, 128> events_{};
};

}  // namespace tcpsteer::apps
