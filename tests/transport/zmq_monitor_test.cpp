// SocketMonitor (transport/zmq/zmq_monitor.h): dropping a monitor must stop
// the monitoring first. libzmq sends monitor events with a blocking send; an
// event for a socket whose monitor reader is gone used to block the
// context's I/O thread for good, which froze every other connection of that
// context (a node lost its relay after a direct link was dialed again).
#include "zmq_monitor.h"

#include <gtest/gtest.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace hearth {
namespace zmqwire {
namespace {

// A ROUTER on a free loopback port and a DEALER connected to it, in `ctx`,
// with one message through so that the connection is up.
struct ConnectedPair {
  zmq::socket_t router;
  zmq::socket_t dealer;
  ConnectedPair(zmq::context_t& ctx)
      : router(ctx, zmq::socket_type::router), dealer(ctx, zmq::socket_type::dealer) {
    router.set(zmq::sockopt::linger, 0);
    dealer.set(zmq::sockopt::linger, 0);
    router.bind("tcp://127.0.0.1:*");
    dealer.connect(router.get(zmq::sockopt::last_endpoint));
    dealer.send(zmq::str_buffer("up"), zmq::send_flags::none);
    std::vector<zmq::message_t> got;
    zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}};
    EXPECT_EQ(zmq::poll(items, 1, std::chrono::milliseconds(5000)), 1);
    EXPECT_TRUE(zmq::recv_multipart(router, std::back_inserter(got), zmq::recv_flags::dontwait));
  }
};

// Whether a message still goes through a fresh pair of the context within
// the deadline (the context's I/O thread is not blocked).
bool contextStillMovesMessages(zmq::context_t& ctx) {
  ConnectedPair probe(ctx);
  probe.dealer.send(zmq::str_buffer("ping"), zmq::send_flags::none);
  zmq::pollitem_t items[] = {{probe.router.handle(), 0, ZMQ_POLLIN, 0}};
  return zmq::poll(items, 1, std::chrono::milliseconds(3000)) == 1;
}

TEST(SocketMonitor, DroppingTheMonitorBeforeItsSocketDisconnectsBlocksNothing) {
  zmq::context_t ctx(1);
  auto watched = std::make_unique<ConnectedPair>(ctx);
  auto monitor =
      std::make_unique<SocketMonitor>(ctx, watched->dealer, "test-dealer", ZMQ_EVENT_DISCONNECTED);
  monitor.reset();          // the reader goes first, as in a link taken down
  watched->router.close();  // then the peer goes away: DISCONNECTED on the dealer
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(contextStillMovesMessages(ctx));
  watched.reset();
}

TEST(SocketMonitor, ReportsADisconnectAndEndpointsAreNotReused) {
  zmq::context_t ctx(1);
  ConnectedPair pair(ctx);
  SocketMonitor first(ctx, pair.dealer, "same-name", ZMQ_EVENT_DISCONNECTED);
  first = SocketMonitor();  // stopped; a second monitor of the same name binds anew
  SocketMonitor second(ctx, pair.dealer, "same-name", ZMQ_EVENT_DISCONNECTED);
  pair.router.close();
  MonitorEvent event{};
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool seen = false;
  while (!seen && std::chrono::steady_clock::now() < until) {
    zmq::pollitem_t items[] = {{second.socket().handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(100));
    seen = second.next(&event) && event.event == ZMQ_EVENT_DISCONNECTED;
  }
  EXPECT_TRUE(seen);
}

}  // namespace
}  // namespace zmqwire
}  // namespace hearth
