#!/bin/sh
# Installs what loophole needs to build (`deps.sh build`), to build and test
# (`deps.sh test`), to build and run the fuzz drivers (`deps.sh fuzz`: clang
# and its libFuzzer/sanitizer runtimes) or to lint (`deps.sh lint`:
# clang-format, clang-tidy), with apt-get on Debian/Ubuntu or brew on macOS.
# Only what is missing is installed; through sudo when not root.
set -eu
what=${1:-build}

if [ "$(uname -s)" = Darwin ]; then
    command -v brew >/dev/null || { echo "deps: Homebrew is needed (https://brew.sh)" >&2; exit 1; }
    extra=""
    # Apple's clang has no libFuzzer; Homebrew's llvm has it and the tools.
    case $what in fuzz | lint) extra=llvm ;; esac
    for f in cmake pkg-config libuv yajl ldns $extra; do
        brew list --versions "$f" >/dev/null 2>&1 || brew install "$f"
    done
    if ! [ -f "$(brew --prefix)/include/http_parser.h" ] && ! [ -f /usr/local/include/http_parser.h ]; then
        echo "deps: http-parser is missing; build it from its 2.9.4 release or install loophole" \
             "with the formula in packaging/homebrew/loophole.rb, which does that" >&2
        exit 1
    fi
    exit 0
fi

command -v dpkg >/dev/null || { echo "deps: only Debian/Ubuntu (apt-get) and macOS (brew) are automated; install cmake, pkg-config, libuv, yajl, ldns and http-parser development files" >&2; exit 1; }

pkgs="cmake make gcc pkg-config libuv1-dev libyajl-dev libldns-dev libhttp-parser-dev"
if [ "$what" = test ]; then
    # Real parts for the integration tests: the engine, compose v1, dig,
    # servers run from host binaries in containers, and busybox for images.
    pkgs="$pkgs docker.io docker-compose dnsutils redis-server redis-tools socat busybox-static iproute2 curl util-linux procps jq python3 pyflakes3 pycodestyle systemd mandoc libxml2-utils librdkafka-dev kcat ruby"
    # kafkajs runs on Node.js; a Node.js from elsewhere (nodesource) already
    # carries npm and conflicts with Debian's npm package.
    command -v npm >/dev/null 2>&1 || pkgs="$pkgs nodejs npm"
elif [ "$what" = fuzz ]; then
    pkgs="$pkgs clang"
elif [ "$what" = lint ]; then
    pkgs="$pkgs clang clang-format clang-tidy"
fi
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
updated=""
install() {
    echo "deps: installing$*"
    export DEBIAN_FRONTEND=noninteractive
    [ -n "$updated" ] || $sudo apt-get update -q >/dev/null
    updated=1
    # shellcheck disable=SC2086
    $sudo apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

missing=""
for p in $pkgs; do
    installed "$p" || missing="$missing $p"
done
# shellcheck disable=SC2086
[ -z "$missing" ] || install $missing

# libFuzzer and the sanitizer runtimes ship apart from clang, per major
# version (libclang-rt-14-dev on Debian 12, matching `clang`).
if [ "$what" = fuzz ]; then
    v=$(clang -dumpversion | cut -d. -f1)
    installed "libclang-rt-$v-dev" || install "libclang-rt-$v-dev"
fi
