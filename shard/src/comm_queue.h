// comm_queue.h (internal) — one worker thread that runs collective calls in
// submission order, so that communication overlaps autograd and every rank
// issues its collectives in the same order (the Collectives contract).
//
// Contract
// - submit() never blocks; it returns a future that holds the task's
//   exception, if any. Tasks run one at a time, FIFO.
// - The first task that throws poisons the queue: later tasks are not run,
//   their futures hold the first error (so no rank issues further collectives
//   after a failure).
// - The destructor runs the queued tasks to the end (they are bounded by
//   their own timeouts) and joins the thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

namespace hearth::shard_detail {

class CommQueue {
 public:
  CommQueue();
  ~CommQueue();
  CommQueue(const CommQueue&) = delete;
  CommQueue& operator=(const CommQueue&) = delete;

  std::shared_future<void> submit(std::function<void()> task);
  // The first error any task raised, or nullptr.
  std::exception_ptr firstError() const;

 private:
  void loop();

  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::pair<std::function<void()>, std::promise<void>>> tasks_;
  std::exception_ptr error_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace hearth::shard_detail
