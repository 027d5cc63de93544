// A Beast body type that counts a request body's bytes and keeps none of them. egress-server
// answers with its own identity, never with what the client sent, so holding a body would only
// let clients grow the server's memory: each connection may send up to --max-body-bytes, and ten
// thousand connections holding 1 MiB each are 10 GiB. Read this way, a body costs the connection's
// read buffer and nothing more, whatever its size.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional/optional.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>

namespace tcpsteer::apps {

struct DiscardedBody {
  using value_type = uint64_t;  // the body's bytes received

  static uint64_t size(value_type bytes) { return bytes; }

  class reader {
   public:
    template <bool IsRequest, typename Fields>
    reader(boost::beast::http::header<IsRequest, Fields>& /*header*/, value_type& bytes)
        : bytes_(bytes) {}

    void init(const boost::optional<uint64_t>& /*length*/, boost::system::error_code& ec) {
      bytes_ = 0;
      ec = {};
    }

    template <typename ConstBufferSequence>
    size_t put(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
      size_t size = boost::asio::buffer_size(buffers);
      bytes_ += size;
      ec = {};
      return size;
    }

    void finish(boost::system::error_code& ec) { ec = {}; }

   private:
    value_type& bytes_;
  };
};

}  // namespace tcpsteer::apps
