// hearth::init's transport variables: bad values are refused with a clear
// LaunchEnvError before any network activity.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "hearth/runtime/init.h"
#include "hearth/runtime/launch_env.h"

namespace hearth {
namespace {

// init over the hearth backend with `name`=`value` (a relay nobody serves:
// the variable must be refused before it is dialed); the error's text.
std::string initErrorWith(const char* name, const char* value) {
  ::setenv("HEARTH_RELAY", "tcp://127.0.0.1:1", 1);
  ::setenv(name, value, 1);
  std::string what;
  try {
    InitOptions options;
    options.backend = "hearth";
    options.timeout = Millis(200);
    init(options);
  } catch (const LaunchEnvError& e) {
    what = e.what();
  } catch (const std::exception& e) {
    what = std::string("not a LaunchEnvError: ") + e.what();
  }
  ::unsetenv(name);
  ::unsetenv("HEARTH_RELAY");
  return what;
}

TEST(InitEnv, BadLanePortIsRefused) {
  for (const char* bad : {"abc", "70000", "-1", "123456"}) {
    const std::string what = initErrorWith("HEARTH_LANE_PORT", bad);
    EXPECT_NE(what.find("HEARTH_LANE_PORT='" + std::string(bad) + "' is not a port number"),
              std::string::npos)
        << bad << ": " << what;
  }
}

TEST(InitEnv, SameHostLinksTakesZeroOrOne) {
  for (const char* bad : {"yes", "off", "2"}) {
    const std::string what = initErrorWith("HEARTH_SAME_HOST_LINKS", bad);
    EXPECT_NE(what.find("HEARTH_SAME_HOST_LINKS='" + std::string(bad) + "' is not 0 or 1"),
              std::string::npos)
        << bad << ": " << what;
  }
}

}  // namespace
}  // namespace hearth
