// optimizer_state_bytes.h (internal) — bytes of tensor state a torch::optim
// optimizer holds (Adam/AdamW moments, SGD momentum, RMSprop, Adagrad).
// State of other optimizer types counts as 0.
#pragma once

#include <cstddef>

namespace torch::optim {
class Optimizer;
}

namespace hearth::shard_detail {

std::size_t optimizerStateBytes(const torch::optim::Optimizer& optimizer);

}  // namespace hearth::shard_detail
