#include "launch_options.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <sstream>

namespace hearth::launcher {
namespace {

// Applies one value to the options; returns an error description (without the
// flag name) or an empty string on success.
using Applier = std::function<std::string(LaunchOptions&, const std::string&)>;

struct FlagSpec {
  std::string name;  // canonical spelling, dashes, without the leading "--"
  bool takesValue;
  std::string valueName;
  std::string help;
  Applier apply;
};

std::optional<long long> parseInteger(const std::string& text) {
  if (text.empty()) return std::nullopt;
  long long value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  if (*begin == '+') ++begin;
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

std::optional<double> parseSeconds(const std::string& text) {
  if (text.empty()) return std::nullopt;
  try {
    size_t used = 0;
    double value = std::stod(text, &used);
    if (used != text.size() || !std::isfinite(value)) return std::nullopt;
    return value;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<bool> parseBool(const std::string& text) {
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "1" || lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "0" || lower == "false" || lower == "no" || lower == "off" || lower.empty()) {
    return false;
  }
  return std::nullopt;
}

std::string quoted(const std::string& value) {
  return "'" + value + "'";
}

Applier intApplier(long long minValue, long long maxValue, const std::string& expectation,
                   const std::function<void(LaunchOptions&, int)>& store) {
  return [=](LaunchOptions& o, const std::string& v) -> std::string {
    auto parsed = parseInteger(v);
    if (!parsed || *parsed < minValue || *parsed > maxValue) {
      return "expected " + expectation + ", got " + quoted(v);
    }
    store(o, static_cast<int>(*parsed));
    return "";
  };
}

Applier secondsApplier(bool allowZero, const std::function<void(LaunchOptions&, double)>& store) {
  return [=](LaunchOptions& o, const std::string& v) -> std::string {
    auto parsed = parseSeconds(v);
    if (!parsed || *parsed < 0 || (!allowZero && *parsed == 0)) {
      return std::string("expected a ") + (allowZero ? "non-negative" : "positive") +
             " number of seconds, got " + quoted(v);
    }
    store(o, *parsed);
    return "";
  };
}

const std::vector<FlagSpec>& flagSpecs() {
  static const std::vector<FlagSpec> specs = {
      {"nproc-per-node", true, "N", "number of workers to start on this node (default 1)",
       intApplier(1, 1 << 20, "a positive integer",
                  [](LaunchOptions& o, int v) { o.nprocPerNode = v; })},
      {"nnodes", true, "N|MIN:MAX",
       "number of nodes, or a MIN:MAX range (c10d rendezvous only; default 1)",
       [](LaunchOptions& o, const std::string& v) -> std::string {
         const std::string expectation = "N or MIN:MAX with 1 <= MIN <= MAX, got " + quoted(v);
         auto colon = v.find(':');
         auto lo = parseInteger(v.substr(0, colon));
         auto hi = colon == std::string::npos ? lo : parseInteger(v.substr(colon + 1));
         if (!lo || !hi || *lo < 1 || *hi < *lo || *hi > (1 << 20))
           return "expected " + expectation;
         o.minNodes = static_cast<int>(*lo);
         o.maxNodes = static_cast<int>(*hi);
         return "";
       }},
      {"node-rank", true, "R", "rank of this node, 0..nnodes-1 (static rendezvous; default 0)",
       intApplier(0, 1 << 20, "a non-negative integer",
                  [](LaunchOptions& o, int v) { o.nodeRank = v; })},
      {"master-addr", true, "HOST", "address of the rank-0 node (default 127.0.0.1)",
       [](LaunchOptions& o, const std::string& v) -> std::string {
         if (v.empty()) return "expected a host name or address, got ''";
         o.masterAddr = v;
         return "";
       }},
      {"master-port", true, "PORT",
       "port on the rank-0 node for the workers' store (default 29500)",
       intApplier(1, 65535, "a port number 1..65535",
                  [](LaunchOptions& o, int v) { o.masterPort = v; })},
      {"rdzv-backend", true, "static|c10d|hearth",
       "rendezvous backend (default static; hearth: workers meet through the hearth relay at "
       "--rdzv-endpoint)",
       [](LaunchOptions& o, const std::string& v) -> std::string {
         if (v == "static") {
           o.rdzvBackend = RdzvBackend::kStatic;
         } else if (v == "c10d") {
           o.rdzvBackend = RdzvBackend::kC10d;
         } else if (v == "hearth") {
           o.rdzvBackend = RdzvBackend::kHearth;
         } else {
           return "expected 'static', 'c10d' or 'hearth', got " + quoted(v);
         }
         return "";
       }},
      {"rdzv-endpoint", true, "HOST[:PORT]",
       "rendezvous endpoint (c10d: store address, default port 29400)",
       [](LaunchOptions& o, const std::string& v) -> std::string {
         if (!parseHostPort(v, kDefaultRdzvPort)) {
           return "expected HOST:PORT with a port 1..65535, got " + quoted(v);
         }
         o.rdzvEndpoint = v;
         return "";
       }},
      {"rdzv-id", true, "ID", "run id shared by all nodes; becomes TORCHELASTIC_RUN_ID",
       [](LaunchOptions& o, const std::string& v) -> std::string {
         if (v.empty()) return "expected a non-empty id";
         o.rdzvId = v;
         return "";
       }},
      {"rdzv-timeout", true, "SECONDS", "how long to wait for the other nodes (default 300)",
       secondsApplier(false, [](LaunchOptions& o, double v) { o.rdzvTimeoutSec = v; })},
      {"rdzv-last-call", true, "SECONDS",
       "with --nnodes MIN:MAX, start once MIN nodes joined and none arrived for this long "
       "(default 5)",
       secondsApplier(true, [](LaunchOptions& o, double v) { o.rdzvLastCallSec = v; })},
      {"max-restarts", true, "N", "restarts of the local worker group on failure (default 0)",
       intApplier(0, std::numeric_limits<int>::max(), "a non-negative integer",
                  [](LaunchOptions& o, int v) { o.maxRestarts = v; })},
      {"standalone", false, "", "single node: pick a free loopback port, MASTER_ADDR=127.0.0.1",
       [](LaunchOptions& o, const std::string& v) -> std::string {
         auto parsed = parseBool(v);
         if (!parsed) return "expected a boolean (1/0/true/false), got " + quoted(v);
         o.standalone = *parsed;
         return "";
       }},
      {"monitor-interval", true, "SECONDS", "how often workers are checked (default 0.1)",
       secondsApplier(false, [](LaunchOptions& o, double v) { o.monitorIntervalSec = v; })},
      {"term-timeout", true, "SECONDS",
       "grace period between SIGTERM and SIGKILL when stopping workers (default 5)",
       secondsApplier(true, [](LaunchOptions& o, double v) { o.termTimeoutSec = v; })},
      {"no-python", false, "", "accepted for torchrun compatibility; has no effect",
       [](LaunchOptions&, const std::string& v) -> std::string {
         return parseBool(v) ? "" : "expected a boolean (1/0/true/false), got " + quoted(v);
       }},
  };
  return specs;
}

std::string envNameFor(const std::string& flag) {
  std::string name = "PET_";
  for (char c : flag) {
    name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

const FlagSpec* findSpec(const std::string& canonical) {
  for (const auto& spec : flagSpecs()) {
    if (spec.name == canonical) return &spec;
  }
  return nullptr;
}

std::string validate(LaunchOptions& o, bool nodeRankFromCli, std::vector<std::string>& warnings) {
  if (o.program.empty()) return "missing PROGRAM to run";
  if (o.standalone) {
    if (o.maxNodes != 1) {
      warnings.push_back("--standalone runs a single node; ignoring --nnodes " +
                         std::to_string(o.minNodes) +
                         (o.minNodes == o.maxNodes ? "" : ":" + std::to_string(o.maxNodes)));
    }
    o.minNodes = o.maxNodes = 1;
    o.nodeRank = 0;
    o.rdzvBackend = RdzvBackend::kStatic;
    o.masterAddr = "127.0.0.1";
    o.masterPort.reset();
    return "";
  }
  if (o.rdzvBackend == RdzvBackend::kHearth && o.rdzvEndpoint.empty()) {
    return "--rdzv-backend hearth requires --rdzv-endpoint HOST:PORT (the hearth relay)";
  }
  if (o.rdzvBackend == RdzvBackend::kStatic || o.rdzvBackend == RdzvBackend::kHearth) {
    if (o.minNodes != o.maxNodes) {
      return "--nnodes " + std::to_string(o.minNodes) + ":" + std::to_string(o.maxNodes) +
             ": a MIN:MAX range needs --rdzv-backend c10d";
    }
    int rank = o.nodeRank.value_or(0);
    if (rank >= o.maxNodes) {
      return "--node-rank " + std::to_string(rank) + " is out of range for --nnodes " +
             std::to_string(o.maxNodes) + " (must be 0.." + std::to_string(o.maxNodes - 1) + ")";
    }
    return "";
  }
  // c10d
  if (o.rdzvEndpoint.empty()) return "--rdzv-backend c10d requires --rdzv-endpoint HOST:PORT";
  if (o.nodeRank) {
    if (*o.nodeRank >= o.maxNodes) {
      return "--node-rank " + std::to_string(*o.nodeRank) + " is out of range for --nnodes " +
             std::to_string(o.maxNodes) + " (must be 0.." + std::to_string(o.maxNodes - 1) + ")";
    }
    if (nodeRankFromCli) {
      warnings.push_back(
          "--node-rank is ignored with --rdzv-backend c10d; node ranks are assigned by the "
          "rendezvous");
    }
  }
  return "";
}

}  // namespace

std::optional<HostPort> parseHostPort(const std::string& text, int defaultPort) {
  HostPort result;
  std::string portText;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close == 1) return std::nullopt;
    result.host = text.substr(1, close - 1);
    std::string rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      portText = rest.substr(1);
      if (portText.empty()) return std::nullopt;
    }
  } else {
    auto colon = text.rfind(':');
    if (colon != std::string::npos && text.find(':') == colon) {
      result.host = text.substr(0, colon);
      portText = text.substr(colon + 1);
      if (portText.empty()) return std::nullopt;
    } else {
      result.host = text;  // plain host or a bare IPv6 address
    }
  }
  if (result.host.empty()) return std::nullopt;
  if (portText.empty()) {
    result.port = defaultPort;
  } else {
    auto port = parseInteger(portText);
    if (!port || *port < 1 || *port > 65535) return std::nullopt;
    result.port = static_cast<int>(*port);
  }
  return result;
}

ParseResult parseLaunchOptions(const std::vector<std::string>& args, const EnvMap& env) {
  ParseResult result;
  LaunchOptions& o = result.options;

  auto fail = [&](std::string message) {
    result.status = ParseStatus::kError;
    result.error = std::move(message);
    return result;
  };

  // 1. PET_* environment variables.
  bool nodeRankFromCli = false;
  for (const auto& spec : flagSpecs()) {
    auto it = env.find(envNameFor(spec.name));
    if (it == env.end()) continue;
    std::string error = spec.apply(o, it->second);
    if (!error.empty()) return fail(it->first + ": " + error);
  }

  // 2. Command-line flags, up to the program name.
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "-h" || arg == "--help") {
      result.status = ParseStatus::kHelp;
      return result;
    }
    if (arg.size() < 2 || arg[0] != '-') break;  // the program
    if (arg.rfind("--", 0) != 0) return fail("unrecognized option " + quoted(arg));

    std::string body = arg.substr(2);
    std::optional<std::string> inlineValue;
    if (auto eq = body.find('='); eq != std::string::npos) {
      inlineValue = body.substr(eq + 1);
      body = body.substr(0, eq);
    }
    std::string canonical = body;
    std::replace(canonical.begin(), canonical.end(), '_', '-');
    const FlagSpec* spec = findSpec(canonical);
    if (spec == nullptr) return fail("unrecognized option '--" + body + "'");
    const std::string shown = "--" + canonical;

    std::string value;
    if (spec->takesValue) {
      if (inlineValue) {
        value = *inlineValue;
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return fail(shown + ": missing value (expected " + spec->valueName + ")");
      }
    } else {
      value = inlineValue.value_or("1");
    }
    std::string error = spec->apply(o, value);
    if (!error.empty()) return fail(shown + ": " + error);
    if (canonical == "node-rank") nodeRankFromCli = true;
  }

  // 3. The program and its arguments, untouched.
  if (i < args.size()) {
    o.program = args[i];
    o.programArgs.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
  }

  std::string error = validate(o, nodeRankFromCli, result.warnings);
  if (!error.empty()) return fail(error);
  result.status = ParseStatus::kRun;
  return result;
}

std::string usageSynopsis() {
  return "usage: hearthrun [OPTIONS] PROGRAM [ARGS...]";
}

std::string usageText() {
  std::ostringstream out;
  out << usageSynopsis() << "\n\n"
      << "Starts --nproc-per-node copies of PROGRAM with the torchrun environment (RANK,\n"
      << "LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, ...). Everything after PROGRAM\n"
      << "is passed to it untouched. Each option can also be set as PET_<OPTION>\n"
      << "(e.g. PET_NPROC_PER_NODE=2); the command line wins over the environment.\n"
      << "Options accept dashes or underscores (--nproc-per-node or --nproc_per_node).\n\n"
      << "options:\n";
  for (const auto& spec : flagSpecs()) {
    std::string left = "  --" + spec.name + (spec.takesValue ? " " + spec.valueName : "");
    out << left;
    if (left.size() < 34) {
      out << std::string(34 - left.size(), ' ');
    } else {
      out << "\n" << std::string(34, ' ');
    }
    out << spec.help << "\n";
  }
  out << "  -h, --help                      show this help and exit\n\n"
      << "exit status: 0 when every worker exits 0; 1 when a worker failed and no restarts\n"
      << "are left or the rendezvous failed; 2 on a usage error; 127 when PROGRAM cannot\n"
      << "be found; 128+N when hearthrun was stopped by signal N.\n";
  return out.str();
}

EnvMap currentEnvironment() {
  EnvMap env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string kv(*entry);
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

}  // namespace hearth::launcher
