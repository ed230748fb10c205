#!/bin/sh
# Installs what loophole needs to build (`deps.sh build`) or to build and test
# (`deps.sh test`), with apt-get on Debian/Ubuntu or brew on macOS. Only what
# is missing is installed; through sudo when not root.
set -eu
what=${1:-build}

if [ "$(uname -s)" = Darwin ]; then
    command -v brew >/dev/null || { echo "deps: Homebrew is needed (https://brew.sh)" >&2; exit 1; }
    for f in cmake pkg-config libuv yajl ldns; do
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
fi
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing >/dev/null
