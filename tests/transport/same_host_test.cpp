// Host identities and same-host endpoints (transport/zmq/same_host.h).
#include "same_host.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

namespace hearth {
namespace zmqhost {
namespace {

TEST(SameHost, IdentityIsThisBootAndNetworkNamespace) {
  const std::string id = thisHostIdentity();
  ASSERT_FALSE(id.empty()) << "no /proc/sys/kernel/random/boot_id or /proc/self/ns/net";
  EXPECT_EQ(thisHostIdentity(), id);  // stable
  struct stat netns {};
  ASSERT_EQ(::stat("/proc/self/ns/net", &netns), 0);
  const std::string suffix = "/" + std::to_string(static_cast<unsigned long long>(netns.st_ino));
  ASSERT_GT(id.size(), suffix.size());
  EXPECT_EQ(id.substr(id.size() - suffix.size()), suffix);  // another namespace: another id
  EXPECT_EQ(id.find('\n'), std::string::npos);
}

TEST(SameHost, WildcardListenersAreDialedOverLoopback) {
  EXPECT_EQ(sameHostEndpointOf("tcp://0.0.0.0:30000"), "tcp://127.0.0.1:30000");
  EXPECT_EQ(sameHostEndpointOf("tcp://[::]:30000"), "tcp://[::1]:30000");
  EXPECT_EQ(sameHostEndpointOf("tcp://127.0.0.1:41000"), "tcp://127.0.0.1:41000");
  EXPECT_EQ(sameHostEndpointOf("tcp://192.168.1.5:30000"), "tcp://192.168.1.5:30000");
}

}  // namespace
}  // namespace zmqhost
}  // namespace hearth
