#include "hearth/runtime/logging.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace hearth {
namespace {
std::atomic<int> gRank{0};
std::mutex gWriteMutex;

void writeLine(const char* level, const std::string& message) {
  std::lock_guard<std::mutex> lock(gWriteMutex);
  std::fprintf(stderr, "[hearth%s] %s\n", level, message.c_str());
  std::fflush(stderr);
}
}  // namespace

void setLogRank(int rank) {
  gRank = rank;
}
int logRank() {
  return gRank;
}
void logInfo(const std::string& message) {
  writeLine("", message);
}
void logRank0(const std::string& message) {
  if (gRank == 0) writeLine("", message);
}
void logWarning(const std::string& message) {
  writeLine(" warning", message);
}

}  // namespace hearth
