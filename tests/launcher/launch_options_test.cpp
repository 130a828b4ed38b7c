#include "launch_options.h"

#include <gtest/gtest.h>

namespace hearth::launcher {
namespace {

ParseResult parse(const std::vector<std::string>& args, const EnvMap& env = {}) {
  return parseLaunchOptions(args, env);
}

TEST(LaunchOptions, Defaults) {
  auto r = parse({"train", "--lr", "0.1"});
  ASSERT_EQ(r.status, ParseStatus::kRun) << r.error;
  EXPECT_EQ(r.options.nprocPerNode, 1);
  EXPECT_EQ(r.options.minNodes, 1);
  EXPECT_EQ(r.options.maxNodes, 1);
  EXPECT_FALSE(r.options.nodeRank.has_value());
  EXPECT_EQ(r.options.rdzvBackend, RdzvBackend::kStatic);
  EXPECT_EQ(r.options.rdzvId, "none");
  EXPECT_EQ(r.options.maxRestarts, 0);
  EXPECT_FALSE(r.options.standalone);
  EXPECT_DOUBLE_EQ(r.options.termTimeoutSec, 5.0);
  EXPECT_DOUBLE_EQ(r.options.rdzvTimeoutSec, 300.0);
  EXPECT_EQ(r.options.program, "train");
  EXPECT_EQ(r.options.programArgs, (std::vector<std::string>{"--lr", "0.1"}));
}

TEST(LaunchOptions, BothSpellingsAndInlineValues) {
  auto a = parse({"--nproc-per-node", "4", "x"});
  auto b = parse({"--nproc_per_node=4", "x"});
  auto c = parse({"--nproc-per-node=4", "x"});
  for (const auto* r : {&a, &b, &c}) {
    ASSERT_EQ(r->status, ParseStatus::kRun) << r->error;
    EXPECT_EQ(r->options.nprocPerNode, 4);
  }
  auto d = parse({"--node_rank", "1", "--nnodes", "2", "--master_addr", "h", "--master_port",
                  "1234", "--max_restarts", "3", "--rdzv_id", "job", "x"});
  ASSERT_EQ(d.status, ParseStatus::kRun) << d.error;
  EXPECT_EQ(d.options.nodeRank, 1);
  EXPECT_EQ(d.options.maxNodes, 2);
  EXPECT_EQ(d.options.masterAddr, "h");
  EXPECT_EQ(d.options.masterPort, 1234);
  EXPECT_EQ(d.options.maxRestarts, 3);
  EXPECT_EQ(d.options.rdzvId, "job");
}

TEST(LaunchOptions, ProgramArgumentsAreUntouched) {
  auto r = parse({"--standalone", "prog", "--nproc-per-node", "9", "--", "-x"});
  ASSERT_EQ(r.status, ParseStatus::kRun) << r.error;
  EXPECT_EQ(r.options.program, "prog");
  EXPECT_EQ(r.options.programArgs, (std::vector<std::string>{"--nproc-per-node", "9", "--", "-x"}));
  EXPECT_EQ(r.options.nprocPerNode, 1);

  auto dashed = parse({"--", "--weird-program", "a"});
  ASSERT_EQ(dashed.status, ParseStatus::kRun) << dashed.error;
  EXPECT_EQ(dashed.options.program, "--weird-program");
}

TEST(LaunchOptions, PetEnvironmentAndPrecedence) {
  EnvMap env = {{"PET_NPROC_PER_NODE", "3"}, {"PET_NNODES", "2"},           {"PET_NODE_RANK", "1"},
                {"PET_MASTER_ADDR", "a"},    {"PET_MASTER_PORT", "1111"},   {"PET_RDZV_ID", "pet"},
                {"PET_MAX_RESTARTS", "2"},   {"PET_RDZV_BACKEND", "static"}};
  auto r = parse({"x"}, env);
  ASSERT_EQ(r.status, ParseStatus::kRun) << r.error;
  EXPECT_EQ(r.options.nprocPerNode, 3);
  EXPECT_EQ(r.options.maxNodes, 2);
  EXPECT_EQ(r.options.nodeRank, 1);
  EXPECT_EQ(r.options.masterAddr, "a");
  EXPECT_EQ(r.options.masterPort, 1111);
  EXPECT_EQ(r.options.rdzvId, "pet");
  EXPECT_EQ(r.options.maxRestarts, 2);

  auto o = parse({"--nproc-per-node", "1", "--master-port", "2222", "--rdzv-id", "cli", "x"}, env);
  ASSERT_EQ(o.status, ParseStatus::kRun) << o.error;
  EXPECT_EQ(o.options.nprocPerNode, 1);
  EXPECT_EQ(o.options.masterPort, 2222);
  EXPECT_EQ(o.options.rdzvId, "cli");
  EXPECT_EQ(o.options.maxNodes, 2);  // still from PET_NNODES

  auto s = parse({"x"}, {{"PET_STANDALONE", "1"}});
  ASSERT_EQ(s.status, ParseStatus::kRun) << s.error;
  EXPECT_TRUE(s.options.standalone);
  auto off = parse({"x"}, {{"PET_STANDALONE", "0"}});
  ASSERT_EQ(off.status, ParseStatus::kRun) << off.error;
  EXPECT_FALSE(off.options.standalone);
}

TEST(LaunchOptions, BadPetValueNamesTheVariable) {
  auto r = parse({"x"}, {{"PET_NNODES", "abc"}});
  ASSERT_EQ(r.status, ParseStatus::kError);
  EXPECT_NE(r.error.find("PET_NNODES"), std::string::npos) << r.error;
}

TEST(LaunchOptions, NnodesRange) {
  auto r = parse({"--nnodes", "1:3", "--rdzv-backend", "c10d", "--rdzv-endpoint", "h:1", "x"});
  ASSERT_EQ(r.status, ParseStatus::kRun) << r.error;
  EXPECT_EQ(r.options.minNodes, 1);
  EXPECT_EQ(r.options.maxNodes, 3);
  EXPECT_EQ(r.options.rdzvBackend, RdzvBackend::kC10d);

  auto staticRange = parse({"--nnodes", "1:3", "x"});
  ASSERT_EQ(staticRange.status, ParseStatus::kError);
  EXPECT_NE(staticRange.error.find("--nnodes"), std::string::npos);
}

TEST(LaunchOptions, Errors) {
  struct Case {
    std::vector<std::string> args;
    std::string mentions;
  };
  std::vector<Case> cases = {
      {{"--nproc-per-node", "0", "x"}, "--nproc-per-node"},
      {{"--nproc-per-node", "two", "x"}, "--nproc-per-node"},
      {{"--nnodes", "abc", "x"}, "--nnodes"},
      {{"--nnodes", "3:2", "x"}, "--nnodes"},
      {{"--nnodes", "0", "x"}, "--nnodes"},
      {{"--node-rank", "2", "--nnodes", "2", "x"}, "--node-rank"},
      {{"--node-rank", "-1", "x"}, "--node-rank"},
      {{"--master-port", "70000", "x"}, "--master-port"},
      {{"--rdzv-backend", "etcd", "x"}, "--rdzv-backend"},
      {{"--rdzv-backend", "c10d", "x"}, "--rdzv-endpoint"},
      {{"--rdzv-endpoint", "host:notaport", "x"}, "--rdzv-endpoint"},
      {{"--max-restarts", "-2", "x"}, "--max-restarts"},
      {{"--term-timeout", "soon", "x"}, "--term-timeout"},
      {{"--bogus", "x"}, "--bogus"},
      {{"-z", "x"}, "-z"},
      {{"--nproc-per-node"}, "--nproc-per-node"},
      {{}, "PROGRAM"},
      {{"--standalone"}, "PROGRAM"},
  };
  for (const auto& c : cases) {
    auto r = parse(c.args);
    EXPECT_EQ(r.status, ParseStatus::kError) << "args: " << ::testing::PrintToString(c.args);
    EXPECT_NE(r.error.find(c.mentions), std::string::npos)
        << "error '" << r.error << "' should mention " << c.mentions;
  }
}

TEST(LaunchOptions, Help) {
  EXPECT_EQ(parse({"--help"}).status, ParseStatus::kHelp);
  EXPECT_EQ(parse({"-h", "prog"}).status, ParseStatus::kHelp);
  EXPECT_EQ(parse({"prog", "--help"}).status, ParseStatus::kRun);  // the program's flag
  std::string help = usageText();
  for (const char* flag :
       {"--nproc-per-node", "--nnodes", "--node-rank", "--master-addr", "--master-port",
        "--rdzv-backend", "--rdzv-endpoint", "--rdzv-id", "--max-restarts", "--standalone",
        "--monitor-interval", "--term-timeout", "--rdzv-timeout"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
}

TEST(LaunchOptions, StandaloneForcesSingleNode) {
  auto r = parse({"--standalone", "--nnodes", "2", "--master-port", "5", "x"});
  ASSERT_EQ(r.status, ParseStatus::kRun) << r.error;
  EXPECT_EQ(r.options.maxNodes, 1);
  EXPECT_EQ(r.options.masterAddr, "127.0.0.1");
  EXPECT_FALSE(r.options.masterPort.has_value());
  EXPECT_FALSE(r.warnings.empty());
}

TEST(LaunchOptions, C10dIgnoresNodeRankWithWarning) {
  auto r =
      parse({"--rdzv-backend=c10d", "--rdzv-endpoint=h:5", "--nnodes=2", "--node-rank=1", "x"});
  ASSERT_EQ(r.status, ParseStatus::kRun) << r.error;
  EXPECT_FALSE(r.warnings.empty());
}

TEST(HostPort, Parses) {
  auto a = parseHostPort("example:1234", 9);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "example");
  EXPECT_EQ(a->port, 1234);
  auto b = parseHostPort("example", 29400);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->port, 29400);
  auto c = parseHostPort("[::1]:80", 9);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 80);
  EXPECT_FALSE(parseHostPort(":80", 9));
  EXPECT_FALSE(parseHostPort("h:", 9));
  EXPECT_FALSE(parseHostPort("h:0", 9));
  EXPECT_FALSE(parseHostPort("h:65536", 9));
  EXPECT_FALSE(parseHostPort("", 9));
}

}  // namespace
}  // namespace hearth::launcher
