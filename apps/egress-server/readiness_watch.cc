#include "apps/egress-server/readiness_watch.h"

#include <unistd.h>

#include <vector>

namespace tcpsteer::apps {

namespace asio = boost::asio;

ReadinessWatch::ReadinessWatch(asio::io_context& io) : io_(io), set_(io) {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return;  // add() then refuses, and connections read the usual way
  boost::system::error_code ec;
  set_.assign(fd, ec);
  if (ec) ::close(fd);
}

ReadinessWatch::~ReadinessWatch() {
  // A waiting connection's coroutine is owned by its handler, which its own frame holds: destroying
  // the handlers here ends those coroutines while the event loop still stands. The others (in the
  // middle of a request) end later, when the event loop is destroyed: every entry forgets the watch
  // first, so their remove() touches nothing of it.
  std::vector<asio::any_completion_handler<void(boost::system::error_code)>> waiters;
  for (auto& [id, entry] : entries_) {
    entry->id = 0;
    if (entry->waiter) waiters.push_back(take(*entry));
  }
  entries_.clear();
  waiters.clear();
}

bool ReadinessWatch::add(Entry& entry, int fd) {
  if (!set_.is_open()) return false;
  epoll_event event{};
  event.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
  uint64_t id = next_id_++;
  event.data.u64 = id;
  if (epoll_ctl(set_.native_handle(), EPOLL_CTL_ADD, fd, &event) != 0) return false;
  entry.id = id;
  entries_.emplace(id, &entry);
  return true;
}

void ReadinessWatch::remove(Entry& entry) {
  if (entry.id != 0) entries_.erase(entry.id);
  entry.id = 0;
}

void ReadinessWatch::cancel(Entry& entry) {
  if (!entry.waiter) {
    entry.aborted = true;
    return;
  }
  auto waiter = take(entry);
  asio::post(io_, [waiter = std::move(waiter)]() mutable {
    std::move(waiter)(asio::error::operation_aborted);
  });
}

asio::any_completion_handler<void(boost::system::error_code)> ReadinessWatch::take(Entry& entry) {
  if (!entry.waiter) return {};  // callers take only a pending wait
  auto waiter = std::move(*entry.waiter);
  entry.waiter.reset();
  return waiter;
}

void ReadinessWatch::armIfIdle() {
  if (armed_ || collecting_ || !set_.is_open()) return;
  armed_ = true;
  set_.async_wait(asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
    armed_ = false;
    if (ec) return;  // closed: the watch is going away
    collect();
  });
}

void ReadinessWatch::collect() {
  collecting_ = true;
  for (;;) {
    int count =
        epoll_wait(set_.native_handle(), events_.data(), static_cast<int>(events_.size()), 0);
    if (count <= 0) break;
    for (int i = 0; i < count; ++i) {
      // Looked up per event, not kept as a pointer: a connection woken by an earlier event may
      // have closed since, and others may have joined.
      // Copied out first: epoll_event is packed on x86-64, its u64 not aligned for a reference.
      const uint64_t id = events_[static_cast<size_t>(i)].data.u64;
      auto found = entries_.find(id);
      if (found == entries_.end()) continue;
      Entry& entry = *found->second;
      if (!entry.waiter) {
        entry.ready = true;
        continue;
      }
      // Resumed here, inline: the connection reads, answers and waits again before the next event.
      auto waiter = take(entry);
      std::move(waiter)(boost::system::error_code{});
    }
    if (static_cast<size_t>(count) < events_.size()) break;
  }
  collecting_ = false;
  // Armed while any connection is in the set: an event for one that is not waiting only marks it.
  if (!entries_.empty()) armIfIdle();
}

}  // namespace tcpsteer::apps
