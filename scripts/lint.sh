#!/usr/bin/env bash
# Style checks with the committed configs.
#   scripts/lint.sh           clang-format check of every C++ file (fast; run by ctest)
#   scripts/lint.sh --tidy    also clang-tidy on runtime/ and transport/ sources
#                             (needs build/compile_commands.json; minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.h' 2>/dev/null || find . -name '*.cpp' -o -name '*.h')
clang-format --dry-run --Werror "${files[@]}"
echo "lint: clang-format clean (${#files[@]} files)"
if [ "${1:-}" = "--tidy" ]; then
  mapfile -t sources < <(git ls-files 'runtime/*.cpp' 'transport/*.cpp')
  clang-tidy -p "${HEARTH_BUILD_DIR:-build}" --quiet "${sources[@]}"
  echo "lint: clang-tidy done"
fi
