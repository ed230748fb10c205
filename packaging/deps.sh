#!/bin/sh
# Installs what loophole needs to build (`deps.sh build`), to build and test
# (`deps.sh test`), to build and run the fuzz drivers (`deps.sh fuzz`: clang
# and its libFuzzer/sanitizer runtimes) or to lint (`deps.sh lint`:
# clang-format, clang-tidy), with apt-get on Debian/Ubuntu or brew on macOS.
# Only what is missing is installed; through sudo when not root (apt-get;
# Homebrew refuses to run as root, so on macOS run it, and make, without sudo).
# On macOS http-parser comes from no package: it is built into build/deps
# (`deps.sh http-parser` does only that), where CMakeLists.txt looks first.
set -eu
what=${1:-build}
src=$(cd "$(dirname "$0")/.." && pwd)

# http-parser 2.9.4 into $src/build/deps/{include,lib}, the way the Homebrew
# formula's resource does it (packaging/homebrew/loophole.rb: the same pinned
# tarball and sha256): one file compiled into a static library. Homebrew's
# own http-parser formula was deprecated in 2023 (upstream archived).
HTTP_PARSER_VERSION=2.9.4
HTTP_PARSER_URL=https://github.com/nodejs/http-parser/archive/refs/tags/v$HTTP_PARSER_VERSION.tar.gz
HTTP_PARSER_SHA256=467b9e30fd0979ee301065e70f637d525c28193449e1b13fbcb1b1fab3ad224f
http_parser() {
    prefix=$src/build/deps
    if [ -f "$prefix/include/http_parser.h" ] && [ -f "$prefix/lib/libhttp_parser.a" ]; then
        return 0
    fi
    echo "deps: building http-parser $HTTP_PARSER_VERSION into $prefix"
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    curl -fsSL -o "$tmp/http-parser.tar.gz" "$HTTP_PARSER_URL"
    got=$(shasum -a 256 "$tmp/http-parser.tar.gz" | cut -d' ' -f1)
    if [ "$got" != "$HTTP_PARSER_SHA256" ]; then
        echo "deps: $HTTP_PARSER_URL has sha256 $got, expected $HTTP_PARSER_SHA256" >&2
        exit 1
    fi
    tar xzf "$tmp/http-parser.tar.gz" -C "$tmp"
    d=$tmp/http-parser-$HTTP_PARSER_VERSION
    # Its Makefile's `package` target would add -Werror, which newer
    # compilers trip over; this is all it builds.
    ${CC:-cc} -O2 -fPIC -c "$d/http_parser.c" -o "$tmp/http_parser.o"
    ar rcs "$tmp/libhttp_parser.a" "$tmp/http_parser.o"
    mkdir -p "$prefix/include" "$prefix/lib"
    cp "$d/http_parser.h" "$prefix/include/"
    cp "$tmp/libhttp_parser.a" "$prefix/lib/"
}
if [ "$what" = http-parser ]; then
    http_parser
    exit 0
fi

if [ "$(uname -s)" = Darwin ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "deps: Homebrew refuses to run as root: run make (or make run, make test) without" \
             "sudo; it asks for sudo itself where it needs root. To install: make && sudo make install" >&2
        exit 1
    fi
    command -v brew >/dev/null || { echo "deps: Homebrew is needed (https://brew.sh)" >&2; exit 1; }
    extra=""
    # Apple's clang has no libFuzzer; Homebrew's llvm has it and the tools.
    case $what in fuzz | lint) extra=llvm ;; esac
    for f in libuv yajl ldns openssl@3 $extra; do
        brew list --versions "$f" >/dev/null 2>&1 || brew install "$f"
    done
    # Any cmake and any pkg-config on PATH will do. Runner images ship
    # pkgconf (Homebrew's pkg-config since 2024), which `brew install
    # pkg-config` can refuse to replace; pkgconf has a pkg-config command,
    # which is the name CMake looks for.
    command -v cmake >/dev/null || brew install cmake
    command -v pkg-config >/dev/null || brew install pkgconf
    # A http-parser installed by hand is used as it is.
    if ! [ -f "$(brew --prefix)/include/http_parser.h" ] && ! [ -f /usr/local/include/http_parser.h ]; then
        http_parser
    fi
    exit 0
fi

command -v dpkg >/dev/null || { echo "deps: only Debian/Ubuntu (apt-get) and macOS (brew) are automated; install cmake, pkg-config, libuv, yajl, ldns, OpenSSL 3 and http-parser development files" >&2; exit 1; }

pkgs="cmake make gcc pkg-config libuv1-dev libyajl-dev libldns-dev libhttp-parser-dev libssl-dev"
if [ "$what" = test ]; then
    # Real parts for the integration tests: the engine, compose v1, dig,
    # servers run from host binaries in containers, and busybox for images.
    pkgs="$pkgs docker.io docker-compose dnsutils redis-server redis-tools socat busybox-static iproute2 curl util-linux procps jq python3 pyflakes3 pycodestyle systemd mandoc libxml2-utils librdkafka-dev kcat ruby"
    # The benchmarks' peers and tools (`make bench`; `make test` runs their
    # smoke versions): haproxy, iperf3, dnsperf against dnsmasq, PostgreSQL
    # and pgbench, strace for the idle wake-ups, gnuplot for the plots.
    pkgs="$pkgs haproxy iperf3 dnsperf dnsmasq-base postgresql strace gnuplot-nox"
    # The web feature's clients: openssl s_client, the system trust store
    # (update-ca-certificates), NSS's certutil, and a real browser for the
    # index page (headless chromium).
    pkgs="$pkgs openssl ca-certificates libnss3-tools chromium"
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
