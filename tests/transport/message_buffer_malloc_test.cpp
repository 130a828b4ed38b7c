// The zmq backend's malloc settings for message buffers
// (transport/zmq/message_buffer_malloc.h): when they are applied and when the
// process's own settings win.
#include <gtest/gtest.h>

#include "message_buffer_malloc.h"

namespace hearth {
namespace zmqwire {
namespace {

TEST(MessageBufferMalloc, AppliedOnlyWhenTheProcessSetNothing) {
  EXPECT_EQ(mallocTuningSkipReason(nullptr, nullptr, nullptr, nullptr, nullptr), "");
  EXPECT_EQ(mallocTuningSkipReason(nullptr, nullptr, nullptr, "glibc.rtld.nns=2", "1"), "");
  EXPECT_EQ(mallocTuningSkipReason(nullptr, nullptr, nullptr, nullptr, "0"),
            "HEARTH_MALLOC_TUNING=0");
  EXPECT_EQ(mallocTuningSkipReason("1048576", nullptr, nullptr, nullptr, nullptr),
            "MALLOC_MMAP_THRESHOLD_ is set");
  EXPECT_EQ(mallocTuningSkipReason(nullptr, "0", nullptr, nullptr, nullptr),
            "MALLOC_TRIM_THRESHOLD_ is set");
  EXPECT_EQ(mallocTuningSkipReason(nullptr, nullptr, "0", nullptr, nullptr),
            "MALLOC_TOP_PAD_ is set");
  EXPECT_EQ(mallocTuningSkipReason(nullptr, nullptr, nullptr,
                                   "glibc.malloc.trim_threshold=0:glibc.rtld.nns=2", nullptr),
            "GLIBC_TUNABLES sets glibc.malloc");
}

TEST(MessageBufferMalloc, DecidesOnceForTheProcess) {
  bool first = false;
  const std::string decision = keepMessageBuffersMapped(&first);
  EXPECT_FALSE(decision.empty());
  bool again = true;
  EXPECT_EQ(keepMessageBuffersMapped(&again), decision);
  EXPECT_FALSE(again);
}

}  // namespace
}  // namespace zmqwire
}  // namespace hearth
