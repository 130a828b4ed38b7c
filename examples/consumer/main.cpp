// The minimal "link it into your loop" example from the README.
// Run: hearthrun --standalone --nproc-per-node 2 ./my_training [config.json]
#include <hearth/hearth.h>
#include <torch/torch.h>

int main(int argc, char** argv) {
  auto config = hearth::Config::load(hearth::engineConfigSchema(), argc > 1 ? argv[1] : "");
  auto ctx = hearth::init(config);  // reads RANK, WORLD_SIZE, MASTER_ADDR, ... from hearthrun
  hearth::seedModel(config.getInt("seed"));
  torch::nn::Sequential model(torch::nn::Linear(10, 64), torch::nn::ReLU(),
                              torch::nn::Linear(64, 1));
  auto optimizer = hearth::makeOptimizer(config, model->parameters());
  hearth::Engine engine(*model, *optimizer, ctx.collectives,
                        hearth::EngineOptions::fromConfig(config));
  hearth::seedData(config.getInt("seed"), ctx.rank());  // each rank draws its own batches
  for (int step = 1; step <= 200; ++step) {
    auto x = torch::randn({32, 10});
    auto loss = torch::mse_loss(model->forward(x), x.sum(1, /*keepdim=*/true));
    engine.backward(loss);  // gradients averaged across ranks
    engine.step();          // optimizer step
    if (step % 50 == 0) {
      hearth::logRank0("step " + std::to_string(step) + " loss " +
                       std::to_string(loss.item<float>()));
    }
  }
  return 0;
}
