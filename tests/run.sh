#!/usr/bin/env bash
# Runs every test of a build: ctest's unit tests, then the integration tests
# against a real Docker engine. tests/engine.sh starts dockerd when none
# answers (and stops what it started); under CI=true an engine that cannot be
# started fails the run.
set -u
build=${1:?usage: tests/run.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)

bash "$here/engine.sh" start || exit 1
trap 'bash "$here/engine.sh" stop' EXIT

cd "$build" || exit 1
ctest --output-on-failure --timeout 600
