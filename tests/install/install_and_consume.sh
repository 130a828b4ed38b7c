#!/usr/bin/env bash
# Installs hearth into a temporary prefix, builds examples/consumer against it
# with find_package(Hearth), and runs it as a world of one.
#   install_and_consume.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
source=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
test -x "$work/prefix/bin/hearthrun" || { echo "hearthrun not installed"; exit 1; }
test -f "$work/prefix/include/hearth/hearth.h" || { echo "headers not installed"; exit 1; }
cmake -S "$source/examples/consumer" -B "$work/consumer" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; exit 1; }
cmake --build "$work/consumer" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
"$work/prefix/bin/hearthrun" --standalone --nproc-per-node 2 "$work/consumer/my_training"
echo "install_and_consume: ok"
