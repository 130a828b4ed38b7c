// hearth/runtime/logging.h — rank-aware log lines.
//
// setLogRank() is called by init(); afterwards logInfo() prints on every rank
// and logRank0() only on rank 0, both to stderr as "[hearth] message" (the
// launcher adds the rank prefix). Each call writes one whole line under a
// mutex, so lines from several threads never interleave. Never blocks beyond
// the write to stderr.
#pragma once

#include <string>

namespace hearth {

void setLogRank(int rank);
int logRank();
void logInfo(const std::string& message);
void logRank0(const std::string& message);
void logWarning(const std::string& message);

}  // namespace hearth
