// CommQueue: a FIFO of collective calls on one thread (see comm_queue.h).
#include "comm_queue.h"

namespace hearth::shard_detail {

CommQueue::CommQueue() : worker_([this] { loop(); }) {}

CommQueue::~CommQueue() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  worker_.join();
}

std::shared_future<void> CommQueue::submit(std::function<void()> task) {
  std::promise<void> promise;
  std::shared_future<void> future = promise.get_future().share();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    tasks_.emplace_back(std::move(task), std::move(promise));
  }
  ready_.notify_one();
  return future;
}

std::exception_ptr CommQueue::firstError() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

void CommQueue::loop() {
  for (;;) {
    std::function<void()> task;
    std::promise<void> promise;
    std::exception_ptr earlier;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      task = std::move(tasks_.front().first);
      promise = std::move(tasks_.front().second);
      tasks_.pop_front();
      earlier = error_;
    }
    if (earlier) {
      promise.set_exception(earlier);
      continue;
    }
    try {
      task();
      promise.set_value();
    } catch (...) {
      std::exception_ptr error = std::current_exception();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = error;
      }
      promise.set_exception(error);
    }
  }
}

}  // namespace hearth::shard_detail
