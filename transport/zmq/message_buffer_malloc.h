// Internal to transport/zmq: glibc malloc settings for message-buffer churn.
//
// libzmq allocates a fresh buffer for every large message it receives and
// frees it when the receiver is done with it (hearth hands the buffer out
// without copying it, and a forwarded chunk is freed by the thread that
// sends it on). With glibc's defaults those megabyte-sized blocks are
// returned to the kernel as soon as they are freed (the dynamic mmap and trim
// thresholds, and thread-arena heaps that shrink), so the next message is
// received into fresh pages: a page fault and a zeroed page per 4 KiB,
// measured at ~10% of the CPU of a ring allreduce on loopback
// (docs/benchmarks.md). keepMessageBuffersMapped() raises the thresholds so
// that freed message buffers are reused while they are hot:
//   M_MMAP_THRESHOLD = 32 MiB (blocks below it come from the heap; glibc's
//                      own dynamic ceiling), M_TRIM_THRESHOLD = 64 MiB (free
//                      memory a heap keeps before returning it).
// The cost is resident memory: up to about 64 MiB of freed blocks per malloc
// arena stay mapped.
//
// Contract
// - Process-wide and once: the first call decides, later calls return the
//   first decision. Thread-safe.
// - The process's own choice wins: nothing is changed when the environment
//   sets MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_ or
//   GLIBC_TUNABLES with a glibc.malloc setting, or HEARTH_MALLOC_TUNING=0.
// - Returns a one-line description of what was done (for the caller's log).
#pragma once

#include <string>

namespace hearth {
namespace zmqwire {

// What keepMessageBuffersMapped() would do given these environment values
// (nullptr = unset): "" to apply the settings, else why it leaves malloc
// alone. Pure.
std::string mallocTuningSkipReason(const char* mmapThreshold, const char* trimThreshold,
                                   const char* topPad, const char* glibcTunables,
                                   const char* hearthSwitch);

// firstCall (optional): set to whether this call made the decision.
std::string keepMessageBuffersMapped(bool* firstCall = nullptr);

}  // namespace zmqwire
}  // namespace hearth
