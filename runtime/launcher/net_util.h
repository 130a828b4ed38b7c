// net_util.h: address helpers for rendezvous.
//
// Contract:
//  - findFreePort(bindAddr) returns a port bindable on bindAddr (an IPv4
//    literal, e.g. "127.0.0.1" or "0.0.0.0") right now: a random one in
//    [kPreferredPortLow, kPreferredPortHigh), below the kernel's ephemeral
//    range so outgoing connections cannot take it, else the kernel's pick for
//    bindAddr:0. Free at that moment only (another listener may take it
//    before the workers bind it). Throws std::runtime_error on failure.
//  - isLocalHost(host) is true for "localhost", loopback addresses, this
//    machine's host name and any address assigned to a local interface.
//  - localAddressTowards(host, port) returns the numeric address of the local
//    interface that routes to host:port (a UDP "connect", no packet is sent),
//    falling back to the host name when that fails.
//  - canConnect(host, port, timeoutMs) is true when a TCP connection to
//    host:port succeeds within timeoutMs (the connection is closed at once).
// Thread-safety: all functions are thread-safe. isLocalHost() and
// localAddressTowards() may block in name resolution (getaddrinfo), bounded by
// the system resolver's own timeouts; canConnect() blocks up to timeoutMs per
// resolved address.
#pragma once

#include <string>

namespace hearth::launcher {

// Ports tried first by findFreePort: below the kernel's ephemeral range.
constexpr int kPreferredPortLow = 20000;
constexpr int kPreferredPortHigh = 32000;
int findFreePort(const std::string& bindAddr);
bool isLocalHost(const std::string& host);
std::string localAddressTowards(const std::string& host, int port);
bool canConnect(const std::string& host, int port, int timeoutMs);

}  // namespace hearth::launcher
