// Internal: a non-blocking reader of libzmq socket-monitor events
// (zmq_socket_monitor), used by the node to turn failed CURVE handshakes into
// MeshRejected and dropped direct links into a path switch. The owner polls
// socket() with its other sockets and calls next() when it is readable.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

namespace hearth {
namespace zmqwire {

struct MonitorEvent {
  int event = 0;            // one ZMQ_EVENT_* bit
  std::uint32_t value = 0;  // errno, ZAP status code or ZMQ_PROTOCOL_ERROR_* (by event)
  std::string address;      // the endpoint the event is about
};

class SocketMonitor {
 public:
  SocketMonitor() = default;
  // Starts monitoring `watched` for `events` (ZMQ_EVENT_* bits). `name` is for
  // reading only: each monitor's endpoint gets a number of its own, because
  // a closed socket's monitor endpoint stays bound until libzmq's reaper has
  // finished with that socket (a direct link dialed again right after its
  // old socket was closed failed with EADDRINUSE). Throws zmq::error_t.
  SocketMonitor(zmq::context_t& context, zmq::socket_t& watched, const std::string& name,
                int events)
      : endpoint_("inproc://hearth-monitor-" + name + "-" + std::to_string(nextNumber())),
        reader_(context, zmq::socket_type::pair) {
    if (zmq_socket_monitor(watched.handle(), endpoint_.c_str(), events) != 0) {
      throw zmq::error_t();
    }
    watched_ = watched.handle();
    reader_.set(zmq::sockopt::linger, 0);
    reader_.connect(endpoint_);
  }
  // Stops the monitoring before the reader goes: libzmq sends each event
  // with a blocking send, so an event for a watched socket whose reader is
  // gone would block libzmq's I/O thread for good (and with it every
  // connection of the context). REQUIRES: the watched socket is still open,
  // i.e. a monitor is destroyed or replaced before the socket it watches.
  ~SocketMonitor() { stop(); }
  SocketMonitor(SocketMonitor&& other) noexcept
      : endpoint_(std::move(other.endpoint_)),
        reader_(std::move(other.reader_)),
        watched_(other.watched_) {
    other.watched_ = nullptr;
  }
  SocketMonitor& operator=(SocketMonitor&& other) noexcept {
    if (this != &other) {
      stop();
      endpoint_ = std::move(other.endpoint_);
      reader_ = std::move(other.reader_);
      watched_ = other.watched_;
      other.watched_ = nullptr;
    }
    return *this;
  }
  SocketMonitor(const SocketMonitor&) = delete;
  SocketMonitor& operator=(const SocketMonitor&) = delete;

  static std::uint64_t nextNumber() {
    static std::atomic<std::uint64_t> next{0};
    return next++;
  }

  bool active() const { return static_cast<bool>(reader_); }
  zmq::socket_t& socket() { return reader_; }

  // Reads one pending event; false when there is none.
  bool next(MonitorEvent* out) {
    if (!reader_) return false;
    zmq::message_t head;
    if (!reader_.recv(head, zmq::recv_flags::dontwait)) return false;
    zmq::message_t address;
    if (head.more()) {
      (void)reader_.recv(address, zmq::recv_flags::none);  // always follows at once
    }
    if (head.size() < 6) return false;
    std::uint16_t event;
    std::uint32_t value;
    std::memcpy(&event, head.data(), 2);
    std::memcpy(&value, static_cast<const char*>(head.data()) + 2, 4);
    out->event = event;
    out->value = value;
    out->address = address.to_string();
    return true;
  }

 private:
  void stop() {
    if (watched_ != nullptr) zmq_socket_monitor(watched_, nullptr, 0);
    watched_ = nullptr;
  }

  std::string endpoint_;
  zmq::socket_t reader_;
  void* watched_ = nullptr;  // the watched socket's handle while monitoring
};

// Why a CURVE/ZMTP handshake failed, in words, or "" for other events.
inline std::string handshakeFailure(const MonitorEvent& e) {
  switch (e.event) {
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      return "the peer refused this node's CURVE key (ZAP status " + std::to_string(e.value) +
             "): its allowlist does not hold this node's public key";
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      if (e.value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
        return "security mechanism mismatch: one side uses CURVE and the other plaintext";
      }
      if (e.value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC ||
          e.value == ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE) {
        return "CURVE handshake failed (cryptographic error): the peer's public key is wrong";
      }
      return "handshake protocol error 0x" + [&] {
        char buf[16];
        std::snprintf(buf, sizeof(buf), "%08x", e.value);
        return std::string(buf);
      }();
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
      return "handshake failed (" + std::string(std::strerror(static_cast<int>(e.value))) +
             "): the peer's CURVE public key is wrong, or the peer does not use CURVE";
    default:
      return "";
  }
}

}  // namespace zmqwire
}  // namespace hearth
