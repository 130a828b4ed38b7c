// hearthrun: a torchrun-compatible launcher. See docs/launcher.md.
#include <string>
#include <vector>

#include "launch_options.h"
#include "launcher.h"
#include "posix_util.h"

int main(int argc, char** argv) {
  using namespace hearth::launcher;
  std::vector<std::string> args(argv + 1, argv + argc);
  EnvMap env = currentEnvironment();
  ParseResult parsed = parseLaunchOptions(args, env);
  switch (parsed.status) {
    case ParseStatus::kHelp:
      writeAll(1, usageText());
      return 0;
    case ParseStatus::kError:
      writeAll(2, "hearthrun: error: " + parsed.error + "\n" + usageSynopsis() +
                      "\nRun 'hearthrun --help' for the list of options.\n");
      return 2;
    case ParseStatus::kRun:
      break;
  }
  for (const auto& warning : parsed.warnings) logLine("warning: " + warning);
  return runLauncher(parsed.options, env);
}
