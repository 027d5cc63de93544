// The egress-server's readiness watch over real socket pairs: a wait ends when bytes come, an edge
// that comes before the wait is not lost, cancel ends a wait (or the next one), a closed or removed
// connection's late event finds nothing, and destroying the watch ends pending waits and leaves no
// entry pointing at it.
#include "apps/egress-server/readiness_watch.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <optional>

namespace tcpsteer::apps {
namespace {

namespace asio = boost::asio;

struct SocketPair {
  SocketPair() {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds.data()) != 0)
      fds = {-1, -1};
  }
  ~SocketPair() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;
  void send() const { ASSERT_EQ(::write(fds[1], "x", 1), 1); }
  std::array<int, 2> fds{};
};

// Runs the loop until it has nothing ready (a bounded number of turns, so a bug cannot hang).
void settle(asio::io_context& io) {
  for (int i = 0; i < 100; ++i) {
    io.restart();
    if (io.poll() == 0) return;
  }
}

// Starts a wait whose outcome lands in result.
void startWait(ReadinessWatch& watch, ReadinessWatch::Entry& entry,
               std::optional<boost::system::error_code>& result) {
  watch.asyncReadable(entry, [&result](boost::system::error_code ec) { result = ec; });
}

// One socket pair's reading end in a watch, and the outcome of its waits.
class ReadinessWatchOnOneSocket : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(watch.add(entry, pair.fds[0])); }
  asio::io_context io;
  SocketPair pair;
  ReadinessWatch::Entry entry;  // declared before the watch: an entry outlives its watch
  ReadinessWatch watch{io};
  std::optional<boost::system::error_code> result;
};

TEST_F(ReadinessWatchOnOneSocket, WaitEndsWhenBytesCome) {
  EXPECT_NE(entry.id, 0u);
  startWait(watch, entry, result);
  settle(io);
  EXPECT_FALSE(result) << "a wait on a socket with nothing to read ended";
  pair.send();
  settle(io);
  ASSERT_TRUE(result);
  EXPECT_FALSE(*result) << result->message();
}

TEST(ReadinessWatch, EdgeBeforeTheWaitIsNotLost) {
  asio::io_context io;
  SocketPair pair;
  SocketPair other;
  ReadinessWatch::Entry first;
  ReadinessWatch::Entry second;
  ReadinessWatch watch(io);
  ASSERT_TRUE(watch.add(first, pair.fds[0]));
  ASSERT_TRUE(watch.add(second, other.fds[0]));
  // The set is armed by a wait of another connection; the edge for `first` comes while it does not
  // wait.
  std::optional<boost::system::error_code> second_result;
  startWait(watch, second, second_result);
  pair.send();
  settle(io);
  EXPECT_TRUE(first.ready);
  std::optional<boost::system::error_code> result;
  startWait(watch, first, result);
  settle(io);
  ASSERT_TRUE(result);
  EXPECT_FALSE(*result);
  EXPECT_FALSE(second_result);
}

TEST_F(ReadinessWatchOnOneSocket, CancelEndsTheWaitOrTheNextOne) {
  startWait(watch, entry, result);
  watch.cancel(entry);
  EXPECT_FALSE(result) << "cancel completed the wait inline";
  settle(io);
  ASSERT_TRUE(result);
  EXPECT_EQ(*result, asio::error::operation_aborted);

  result.reset();
  watch.cancel(entry);  // nobody waits: the next wait fails at once
  startWait(watch, entry, result);
  settle(io);
  ASSERT_TRUE(result);
  EXPECT_EQ(*result, asio::error::operation_aborted);
}

TEST(ReadinessWatch, RemovedConnectionsEventFindsNothing) {
  asio::io_context io;
  SocketPair pair;
  SocketPair other;
  auto gone = std::make_unique<ReadinessWatch::Entry>();
  ReadinessWatch::Entry staying;
  ReadinessWatch watch(io);
  ASSERT_TRUE(watch.add(*gone, pair.fds[0]));
  ASSERT_TRUE(watch.add(staying, other.fds[0]));
  std::optional<boost::system::error_code> result;
  startWait(watch, staying, result);
  watch.remove(*gone);
  EXPECT_EQ(gone->id, 0u);
  gone.reset();  // its memory is freed; its socket still in the kernel's set
  pair.send();   // an event for it: ASan reports a use of the freed entry if the watch kept it
  settle(io);
  EXPECT_FALSE(result);
  other.send();
  settle(io);
  ASSERT_TRUE(result);
  EXPECT_FALSE(*result);
}

TEST(ReadinessWatch, DestroyingTheWatchEndsWaitsAndForgetsEntries) {
  asio::io_context io;
  SocketPair pair;
  SocketPair other;
  ReadinessWatch::Entry waiting;
  ReadinessWatch::Entry busy;  // in the set, not waiting (in the middle of a request)
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watched = token;
  bool completed = false;
  {
    ReadinessWatch watch(io);
    ASSERT_TRUE(watch.add(waiting, pair.fds[0]));
    ASSERT_TRUE(watch.add(busy, other.fds[0]));
    watch.asyncReadable(waiting, [token = std::move(token), &completed](boost::system::error_code) {
      completed = true;
    });
    settle(io);
    EXPECT_FALSE(watched.expired());
  }
  // The pending wait's handler (in the server: the coroutine it resumes) is destroyed, not called.
  EXPECT_TRUE(watched.expired());
  EXPECT_FALSE(completed);
  // Both entries forgot the watch: a connection ending later (when the event loop is destroyed)
  // calls remove() on a watch that is gone, which must then touch nothing of it.
  EXPECT_EQ(waiting.id, 0u);
  EXPECT_EQ(busy.id, 0u);
}

}  // namespace
}  // namespace tcpsteer::apps
