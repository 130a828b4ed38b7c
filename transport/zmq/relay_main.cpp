// hearth-relay: runs the hearth relay for one run until SIGINT/SIGTERM.
// Prints "hearth-relay: listening on ENDPOINT" on stdout once bound.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

#include "hearth/transport/zmq_relay.h"

namespace {

hearth::ZmqRelay* gRelay = nullptr;  // non-owning, for the signal handler only

extern "C" void onSignal(int) {
  if (gRelay != nullptr) gRelay->requestStop();
}

void usage(std::ostream& out) {
  out << "usage: hearth-relay --run-id ID --world-size N|MIN:MAX [options]\n"
         "\n"
         "The rendezvous and forwarder of one hearth run (docs/transport_protocol.md).\n"
         "\n"
         "  --bind ENDPOINT         ZeroMQ endpoint to bind (default tcp://127.0.0.1:0;\n"
         "                          port 0 picks a free port, printed at start)\n"
         "  --run-id ID             run id nodes must present (required)\n"
         "  --world-size N          nodes expected in the run (required, >= 1)\n"
         "  --world-size MIN:MAX    elastic size (1 <= MIN <= MAX): admit up to MAX nodes;\n"
         "                          seal the world at once when MAX joined, or when at\n"
         "                          least MIN joined and none arrived for --join-grace\n"
         "  --join-grace SECONDS    with MIN:MAX, how long to wait for another node once\n"
         "                          MIN joined (default 5; decimals allowed, >= 0)\n"
         "  --token TOKEN           join token nodes must present\n"
         "  --token-env VAR         read the join token from environment variable VAR\n"
         "                          (keeps it out of the process list)\n"
         "  --heartbeat-timeout MS  a node silent this long is lost (default 5000)\n"
         "  --curve-secret-key FILE enable CURVE with this relay secret key file\n"
         "                          (hearth keygen --out PREFIX writes PREFIX.key/.pub);\n"
         "                          nodes need the public key (HEARTH_RELAY_PUBLIC_KEY)\n"
         "  --allow-keys FILE       admit only these node public keys (one Z85 key per\n"
         "                          line, # comments); needs --curve-secret-key\n"
         "  --allow-plaintext       permit binding a non-loopback address without CURVE\n"
         "  --help                  this text\n";
}

bool parseInt(const std::string& s, long* out) {
  try {
    std::size_t used = 0;
    *out = std::stol(s, &used);
    return used == s.size();
  } catch (const std::exception&) {
    return false;
  }
}

// N or MIN:MAX, 1 <= MIN <= MAX <= 2^20.
bool parseWorldSize(const std::string& s, long* min, long* max) {
  constexpr long kMax = 1 << 20;
  const auto colon = s.find(':');
  if (colon == std::string::npos) {
    if (!parseInt(s, max) || *max < 1 || *max > kMax) return false;
    *min = *max;
    return true;
  }
  return parseInt(s.substr(0, colon), min) && parseInt(s.substr(colon + 1), max) && *min >= 1 &&
         *min <= *max && *max <= kMax;
}

bool parseSeconds(const std::string& s, double* out) {
  try {
    std::size_t used = 0;
    *out = std::stod(s, &used);
    return used == s.size() && *out >= 0 && *out <= 86400.0;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

int main(int argc, char** argv) {
  hearth::ZmqRelayOptions options;
  bool haveRunId = false;
  bool haveWorld = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(std::cout);
      return 0;
    }
    if (arg == "--allow-plaintext") {
      options.allowPlaintext = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::cerr << "hearth-relay: " << arg
                << (arg.rfind("--", 0) == 0 ? " needs a value" : ": unknown argument") << "\n";
      usage(std::cerr);
      return 2;
    }
    const std::string value = argv[++i];
    long n = 0;
    if (arg == "--bind") {
      options.bindEndpoint = value;
    } else if (arg == "--run-id") {
      options.runId = value;
      haveRunId = true;
    } else if (arg == "--world-size") {
      long min = 0;
      long max = 0;
      if (!parseWorldSize(value, &min, &max)) {
        std::cerr << "hearth-relay: --world-size must be N or MIN:MAX with integers "
                     "1 <= MIN <= MAX, got '"
                  << value << "'\n";
        return 2;
      }
      options.worldSize = static_cast<int>(max);
      if (min != max) {
        options.minWorldSize = static_cast<int>(min);
        options.maxWorldSize = static_cast<int>(max);
      }
      haveWorld = true;
    } else if (arg == "--join-grace") {
      double seconds = 0;
      if (!parseSeconds(value, &seconds)) {
        std::cerr << "hearth-relay: --join-grace must be a number of seconds >= 0, got '" << value
                  << "'\n";
        return 2;
      }
      options.joinGrace = std::chrono::milliseconds(static_cast<long>(seconds * 1000.0 + 0.5));
    } else if (arg == "--token") {
      options.joinToken = value;
    } else if (arg == "--token-env") {
      const char* token = std::getenv(value.c_str());
      if (token == nullptr) {
        std::cerr << "hearth-relay: environment variable " << value << " is not set\n";
        return 2;
      }
      options.joinToken = token;
    } else if (arg == "--heartbeat-timeout") {
      if (!parseInt(value, &n) || n < 1) {
        std::cerr << "hearth-relay: --heartbeat-timeout must be a positive integer (ms), got '"
                  << value << "'\n";
        return 2;
      }
      options.heartbeatTimeout = std::chrono::milliseconds(n);
    } else if (arg == "--curve-secret-key") {
      options.curveSecretKeyFile = value;
    } else if (arg == "--allow-keys") {
      options.allowKeysFile = value;
    } else {
      std::cerr << "hearth-relay: unknown argument " << arg << "\n";
      usage(std::cerr);
      return 2;
    }
  }
  if (!haveRunId || !haveWorld) {
    std::cerr << "hearth-relay: --run-id and --world-size are required\n";
    usage(std::cerr);
    return 2;
  }
  try {
    hearth::ZmqRelay relay(options);
    gRelay = &relay;
    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    std::cout << "hearth-relay: listening on " << relay.endpoint() << std::endl;
    if (!relay.publicKey().empty()) {
      std::cout << "hearth-relay: CURVE public key " << relay.publicKey() << std::endl;
    }
    relay.run();
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    gRelay = nullptr;
  } catch (const std::exception& e) {
    std::cerr << "hearth-relay: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
