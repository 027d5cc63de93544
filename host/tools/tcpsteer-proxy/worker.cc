#include "host/tools/tcpsteer-proxy/worker.h"

#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "host/tools/tcpsteer-proxy/output.h"
#include "host/tools/tcpsteer-proxy/relay.h"

namespace tcpsteer::proxy {
namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadChunk = size_t{64} * 1024;
// After an accept fails for lack of fds or memory: wait, then try again (doubling up to 1 s).
constexpr auto kFirstAcceptBackoff = std::chrono::milliseconds(10);
constexpr auto kMaxAcceptBackoff = std::chrono::milliseconds(1000);
constexpr auto kAcceptReportInterval = std::chrono::seconds(1);

bool isResourceShortage(const boost::system::error_code& ec) {
  return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
         ec == asio::error::no_memory || ec.value() == ENFILE;
}

}  // namespace

Result<void> Worker::setUp(const std::map<std::string, std::string>& modules,
                           const std::vector<int>& listen_fds) {
  read_buffer_.resize(kReadChunk);
  for (size_t i = 0; i < config_.listeners.size(); ++i) {
    const host::ListenerConfig& listener = config_.listeners[i];
    auto runtime = std::make_unique<WasmRuntime>();
    runtime->listener = listener.name;
    runtime->stats_key = "w" + std::to_string(index_) + "/" + listener.name;
    if (listener.wasm) {
      host::VmOptions options;
      options.engine = engine_;
      options.fail_open = listener.wasm->fail_open;
      options.log_level = host::LogLevel::kInfo;
      const std::string& bytes = modules.at(listener.wasm->filename);
      host::LoadReport report;
      runtime->vm = host::Vm::load({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()},
                                   options, &report);
      if (!runtime->vm) {
        return Error{"Unable to create Wasm network filter for listener " + listener.name + ": " +
                     (report.problems.empty() ? "load failed" : report.problems[0])};
      }
      if (index_ == 0) {
        emit("[wasm] listener=" + listener.name + " engine=" +
             (runtime->vm->precompiled() ? "precompiled (wasm2c, native code)"
                                         : "interpreter (wabt)"));
      }
      auto status =
          runtime->vm->start()
              ? runtime->vm->startPlugin({listener.wasm->root_id, listener.wasm->configuration,
                                          listener.wasm->name, listener.wasm->vm_id})
              : host::Vm::PluginStatus::kFailed;
      runtime->flushLogs();
      if (status != host::Vm::PluginStatus::kOk) {
        const auto& failure = runtime->vm->failure();
        return Error{"listener " + listener.name + ": the wasm filter " +
                     (status == host::Vm::PluginStatus::kConfigRejected
                          ? "rejected its configuration"
                          : "failed to start") +
                     (failure ? " (" + failure->message + ")" : std::string())};
      }
    }
    // Each worker's acceptor is its own descriptor of the one listening socket.
    int fd = ::dup(listen_fds[i]);
    if (fd < 0) return Error{"listener " + listener.name + ": dup: " + std::strerror(errno)};
    auto acceptor = std::make_unique<tcp::acceptor>(io_);
    boost::system::error_code ec;
    auto address = asio::ip::make_address(listener.address.address);
    acceptor->assign(address.is_v6() ? tcp::v6() : tcp::v4(), fd, ec);
    if (ec) {
      ::close(fd);
      return Error{"listener " + listener.name + ": " + ec.message()};
    }
    runtimes_.push_back(std::move(runtime));
    acceptors_.push_back(std::move(acceptor));
  }
  return {};
}

void Worker::start() {
  for (size_t i = 0; i < acceptors_.size(); ++i) {
    asio::co_spawn(io_, accept(i), [this, i](const std::exception_ptr& error) {
      if (error && !draining_) {
        ++stats_.session_errors;
        emit("[proxy] accept loop of listener " + config_.listeners[i].name + " ended by an error");
      }
    });
  }
  thread_ = std::thread([this] {
    io_.run();
    finished_ = true;
  });
}

void Worker::drain() {
  asio::post(io_, [this] {
    draining_ = true;
    boost::system::error_code ignored;
    for (auto& acceptor : acceptors_) acceptor->close(ignored);
    if (active_ == 0) io_.stop();
  });
}

void Worker::stop() {
  io_.stop();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

asio::awaitable<void> Worker::accept(size_t index) {
  const host::ListenerConfig& listener = config_.listeners[index];
  asio::steady_timer backoff_timer(io_);
  auto backoff = kFirstAcceptBackoff;
  auto last_report = std::chrono::steady_clock::time_point();
  uint64_t unreported = 0;
  while (!draining_) {
    auto [ec, socket] = co_await acceptors_[index]->async_accept(kNoThrow);
    if (draining_ || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      if (isResourceShortage(ec)) {
        // Envoy's downstream_cx_overflow: the connection waits in the backlog meanwhile. One log
        // line a second at most, with the count since the last.
        ++stats_.downstream_cx_overflow;
        ++unreported;
        auto now = std::chrono::steady_clock::now();
        if (now - last_report >= kAcceptReportInterval) {
          emit("[proxy] listener " + listener.name + ": accept failed (" + ec.message() + ") " +
               std::to_string(unreported) + " time(s); retrying");
          last_report = now;
          unreported = 0;
        }
        backoff_timer.expires_after(backoff);
        co_await backoff_timer.async_wait(kNoThrow);
        backoff = std::min(backoff * 2, kMaxAcceptBackoff);
      }
      continue;  // ECONNABORTED and the like: the next connection is fine
    }
    backoff = kFirstAcceptBackoff;
    auto relay = std::make_shared<Relay>(
        std::move(socket), RelayContext{listener, config_.clusters, stats_,
                                        std::span<char>(read_buffer_), next_endpoint_});
    WasmRuntime& runtime = *runtimes_[index];
    if (runtime.vm) relay->setFilter(std::make_unique<WasmNetworkFilter>(runtime, stats_, *relay));
    ++active_;
    asio::co_spawn(io_, relay->run(), [this, relay](const std::exception_ptr& error) {
      if (error) {
        ++stats_.session_errors;
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          emit(std::string("[proxy] connection ended by an error: ") + e.what());
        } catch (...) {
          emit("[proxy] connection ended by an unknown error");
        }
        relay->close("error");
      }
      if (--active_ == 0 && draining_) io_.stop();
    });
  }
}

}  // namespace tcpsteer::proxy
