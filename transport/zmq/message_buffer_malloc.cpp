// glibc malloc settings for message-buffer churn (message_buffer_malloc.h).
#include "message_buffer_malloc.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

namespace hearth {
namespace zmqwire {

namespace {
constexpr int kMmapThresholdBytes = 32 << 20;
constexpr int kTrimThresholdBytes = 64 << 20;
}  // namespace

std::string mallocTuningSkipReason(const char* mmapThreshold, const char* trimThreshold,
                                   const char* topPad, const char* glibcTunables,
                                   const char* hearthSwitch) {
  if (hearthSwitch != nullptr && std::strcmp(hearthSwitch, "0") == 0) {
    return "HEARTH_MALLOC_TUNING=0";
  }
  if (mmapThreshold != nullptr) return "MALLOC_MMAP_THRESHOLD_ is set";
  if (trimThreshold != nullptr) return "MALLOC_TRIM_THRESHOLD_ is set";
  if (topPad != nullptr) return "MALLOC_TOP_PAD_ is set";
  if (glibcTunables != nullptr && std::strstr(glibcTunables, "glibc.malloc.") != nullptr) {
    return "GLIBC_TUNABLES sets glibc.malloc";
  }
  return "";
}

std::string keepMessageBuffersMapped(bool* firstCall) {
  static std::once_flag once;
  static std::string done;
  if (firstCall != nullptr) *firstCall = false;
  std::call_once(once, [firstCall] {
    if (firstCall != nullptr) *firstCall = true;
    const std::string skip = mallocTuningSkipReason(
        std::getenv("MALLOC_MMAP_THRESHOLD_"), std::getenv("MALLOC_TRIM_THRESHOLD_"),
        std::getenv("MALLOC_TOP_PAD_"), std::getenv("GLIBC_TUNABLES"),
        std::getenv("HEARTH_MALLOC_TUNING"));
    if (!skip.empty()) {
      done = "malloc settings left alone (" + skip + ")";
      return;
    }
    const bool ok = mallopt(M_MMAP_THRESHOLD, kMmapThresholdBytes) == 1 &&
                    mallopt(M_TRIM_THRESHOLD, kTrimThresholdBytes) == 1;
    done = ok ? "malloc keeps freed message buffers mapped (M_MMAP_THRESHOLD 32 MiB, "
                "M_TRIM_THRESHOLD 64 MiB; HEARTH_MALLOC_TUNING=0 turns this off)"
              : "malloc settings unchanged (mallopt refused them)";
  });
  return done;
}

}  // namespace zmqwire
}  // namespace hearth
