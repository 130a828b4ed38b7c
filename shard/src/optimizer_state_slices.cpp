// Optimizer state <-> named tensors and scalars (optimizer_state_slices.h).
#include "optimizer_state_slices.h"

#include <torch/optim/adagrad.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/rmsprop.h>
#include <torch/optim/sgd.h>

#include <set>
#include <stdexcept>
#include <vector>

namespace hearth::shard_detail {
namespace {

namespace optim = torch::optim;

std::string keyOf(const at::Tensor& param) {
  return c10::guts::to_string(param.unsafeGetTensorImpl());
}

const optim::OptimizerOptions& optionsOf(const optim::Optimizer& optimizer) {
  const auto& groups = optimizer.param_groups();
  if (!groups.empty() && groups[0].has_options()) return groups[0].options();
  return optimizer.defaults();
}

void put(std::map<std::string, at::Tensor>& tensors, const char* name, const at::Tensor& t) {
  if (t.defined()) tensors[name] = t;
}

// Checks that `tensors` holds every name of `required`, nothing outside
// `required` + `optional`, and that `scalars` holds an integer "step" when
// `withStep`.
void checkFields(const std::string& kind, const nlohmann::json& scalars,
                 const std::map<std::string, at::Tensor>& tensors,
                 const std::vector<std::string>& required, const std::vector<std::string>& optional,
                 bool withStep) {
  for (const auto& name : required) {
    auto found = tensors.find(name);
    if (found == tensors.end() || !found->second.defined()) {
      throw std::invalid_argument(kind + " state without '" + name + "'");
    }
  }
  std::set<std::string> known(required.begin(), required.end());
  known.insert(optional.begin(), optional.end());
  for (const auto& entry : tensors) {
    if (!known.count(entry.first)) {
      throw std::invalid_argument(kind + " state has no field '" + entry.first + "'");
    }
  }
  if (withStep &&
      (!scalars.is_object() || !scalars.contains("step") ||
       !scalars.at("step").is_number_integer() || scalars.at("step").get<std::int64_t>() < 0)) {
    throw std::invalid_argument(kind + " state without a valid integer 'step'");
  }
}

at::Tensor optionalField(const std::map<std::string, at::Tensor>& tensors, const char* name) {
  auto found = tensors.find(name);
  return found == tensors.end() ? at::Tensor() : found->second;
}

// Adam and AdamW share their options and per-parameter state fields; these
// templates serve both (AdamOptions/AdamWOptions, AdamParamState/
// AdamWParamState are unrelated types with the same accessors).
template <typename Options>
nlohmann::json adamLikeOptionsJson(const Options& o) {
  return {{"lr", o.lr()},   {"beta1", std::get<0>(o.betas())},  {"beta2", std::get<1>(o.betas())},
          {"eps", o.eps()}, {"weight_decay", o.weight_decay()}, {"amsgrad", o.amsgrad()}};
}

template <typename State>
void exportAdamLike(const State& s, ParamStateSlices& out) {
  out.scalars["step"] = s.step();
  put(out.tensors, "exp_avg", s.exp_avg());
  put(out.tensors, "exp_avg_sq", s.exp_avg_sq());
  put(out.tensors, "max_exp_avg_sq", s.max_exp_avg_sq());
}

template <typename State>
std::unique_ptr<optim::OptimizerParamState> makeAdamLike(
    const std::string& kind, const nlohmann::json& scalars,
    const std::map<std::string, at::Tensor>& tensors) {
  checkFields(kind, scalars, tensors, {"exp_avg", "exp_avg_sq"}, {"max_exp_avg_sq"}, true);
  auto state = std::make_unique<State>();
  state->step(scalars.at("step").get<std::int64_t>());
  state->exp_avg(tensors.at("exp_avg"));
  state->exp_avg_sq(tensors.at("exp_avg_sq"));
  state->max_exp_avg_sq(optionalField(tensors, "max_exp_avg_sq"));
  return state;
}

}  // namespace

std::string optimizerKind(const optim::Optimizer& optimizer) {
  if (dynamic_cast<const optim::Adam*>(&optimizer)) return "adam";
  if (dynamic_cast<const optim::AdamW*>(&optimizer)) return "adamw";
  if (dynamic_cast<const optim::SGD*>(&optimizer)) return "sgd";
  if (dynamic_cast<const optim::RMSprop*>(&optimizer)) return "rmsprop";
  if (dynamic_cast<const optim::Adagrad*>(&optimizer)) return "adagrad";
  return "";
}

std::string supportedOptimizerKinds() {
  return "adam, adamw, sgd, rmsprop, adagrad";
}

nlohmann::json optimizerOptionsJson(const optim::Optimizer& optimizer) {
  const optim::OptimizerOptions& options = optionsOf(optimizer);
  nlohmann::json j = nlohmann::json::object();
  if (auto* o = dynamic_cast<const optim::AdamOptions*>(&options)) {
    j = adamLikeOptionsJson(*o);
  } else if (auto* o = dynamic_cast<const optim::AdamWOptions*>(&options)) {
    j = adamLikeOptionsJson(*o);
  } else if (auto* o = dynamic_cast<const optim::SGDOptions*>(&options)) {
    j = {{"lr", o->lr()},
         {"momentum", o->momentum()},
         {"dampening", o->dampening()},
         {"weight_decay", o->weight_decay()},
         {"nesterov", o->nesterov()}};
  } else if (auto* o = dynamic_cast<const optim::RMSpropOptions*>(&options)) {
    j = {{"lr", o->lr()},
         {"alpha", o->alpha()},
         {"eps", o->eps()},
         {"weight_decay", o->weight_decay()},
         {"momentum", o->momentum()},
         {"centered", o->centered()}};
  } else if (auto* o = dynamic_cast<const optim::AdagradOptions*>(&options)) {
    j = {{"lr", o->lr()},
         {"lr_decay", o->lr_decay()},
         {"weight_decay", o->weight_decay()},
         {"initial_accumulator_value", o->initial_accumulator_value()},
         {"eps", o->eps()}};
  }
  return j;
}

ParamStateSlices exportParamState(const optim::Optimizer& optimizer, const at::Tensor& param) {
  const std::string kind = optimizerKind(optimizer);
  if (kind.empty()) {
    throw std::invalid_argument(
        "unsupported optimizer type (supported: " + supportedOptimizerKinds() + ")");
  }
  ParamStateSlices out;
  auto found = optimizer.state().find(keyOf(param));
  if (found == optimizer.state().end() || !found->second) return out;
  const optim::OptimizerParamState& state = *found->second;
  out.present = true;
  if (auto* s = dynamic_cast<const optim::AdamParamState*>(&state)) {
    exportAdamLike(*s, out);
  } else if (auto* s = dynamic_cast<const optim::AdamWParamState*>(&state)) {
    exportAdamLike(*s, out);
  } else if (auto* s = dynamic_cast<const optim::SGDParamState*>(&state)) {
    put(out.tensors, "momentum_buffer", s->momentum_buffer());
  } else if (auto* s = dynamic_cast<const optim::RMSpropParamState*>(&state)) {
    out.scalars["step"] = s->step();
    put(out.tensors, "square_avg", s->square_avg());
    put(out.tensors, "momentum_buffer", s->momentum_buffer());
    put(out.tensors, "grad_avg", s->grad_avg());
  } else if (auto* s = dynamic_cast<const optim::AdagradParamState*>(&state)) {
    out.scalars["step"] = s->step();
    put(out.tensors, "sum", s->sum());
  } else {
    throw std::invalid_argument("the " + kind + " optimizer holds state of an unknown type");
  }
  return out;
}

std::unique_ptr<optim::OptimizerParamState> makeParamState(
    const std::string& kind, const nlohmann::json& scalars,
    const std::map<std::string, at::Tensor>& tensors) {
  if (kind == "adam") return makeAdamLike<optim::AdamParamState>(kind, scalars, tensors);
  if (kind == "adamw") return makeAdamLike<optim::AdamWParamState>(kind, scalars, tensors);
  if (kind == "sgd") {
    checkFields(kind, scalars, tensors, {"momentum_buffer"}, {}, false);
    auto state = std::make_unique<optim::SGDParamState>();
    state->momentum_buffer(tensors.at("momentum_buffer"));
    return state;
  }
  if (kind == "rmsprop") {
    checkFields(kind, scalars, tensors, {"square_avg"}, {"momentum_buffer", "grad_avg"}, true);
    auto state = std::make_unique<optim::RMSpropParamState>();
    state->step(scalars.at("step").get<std::int64_t>());
    state->square_avg(tensors.at("square_avg"));
    state->momentum_buffer(optionalField(tensors, "momentum_buffer"));
    state->grad_avg(optionalField(tensors, "grad_avg"));
    return state;
  }
  if (kind == "adagrad") {
    checkFields(kind, scalars, tensors, {"sum"}, {}, true);
    auto state = std::make_unique<optim::AdagradParamState>();
    state->step(scalars.at("step").get<std::int64_t>());
    state->sum(tensors.at("sum"));
    return state;
  }
  throw std::invalid_argument("unsupported optimizer type '" + kind +
                              "' (supported: " + supportedOptimizerKinds() + ")");
}

void installParamState(optim::Optimizer& optimizer, const at::Tensor& param,
                       std::unique_ptr<optim::OptimizerParamState> state) {
  const std::string key = keyOf(param);
  if (state) {
    optimizer.state()[key] = std::move(state);
  } else {
    optimizer.state().erase(key);
  }
}

}  // namespace hearth::shard_detail
