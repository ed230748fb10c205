# Homebrew formula for loophole. Current Homebrew installs formulae only from
# a tap, so install it through a local one (README.md, "macOS (Homebrew)"):
#   brew tap-new $USER/local
#   cp packaging/homebrew/loophole.rb "$(brew --repository $USER/local)/Formula/"
#   brew install --HEAD $USER/local/loophole
#   sudo brew services start loophole
# Until the project has a public home, point `head` at a clone first:
#   head "file:///path/to/clone", branch: "main", using: :git
# (without `using: :git` Homebrew fetches a file:// URL with curl).
class Loophole < Formula
  desc "Own loopback address and DNS name for every Docker container"
  # PLACEHOLDER: the project's public repository; set before publishing the tap.
  homepage "https://github.com/loophole-dev/loophole"
  head "https://github.com/loophole-dev/loophole.git", branch: "main"
  # license: set once the project has chosen one (brew audit asks for it).

  depends_on "cmake" => :build
  depends_on "pkgconf" => :build
  depends_on "ldns"
  depends_on "libuv"
  depends_on "openssl@3"
  depends_on "yajl"

  # http-parser's own formula was deprecated in homebrew-core in 2023 (its
  # upstream is archived), so the last release is built here and linked
  # statically instead of depending on a formula that may disappear.
  resource "http-parser" do
    url "https://github.com/nodejs/http-parser/archive/refs/tags/v2.9.4.tar.gz"
    sha256 "467b9e30fd0979ee301065e70f637d525c28193449e1b13fbcb1b1fab3ad224f"
  end

  def install
    hp = buildpath/"http-parser"
    resource("http-parser").stage do
      # One file; its Makefile's `package` target would do the same with
      # flags we do not want (-Werror on newer compilers).
      system ENV.cc, "-O2", "-fPIC", "-c", "http_parser.c", "-o", "http_parser.o"
      system "ar", "rcs", "libhttp_parser.a", "http_parser.o"
      (hp/"include").install "http_parser.h"
      (hp/"lib").install "libhttp_parser.a"
    end

    args = %W[
      -DCMAKE_PREFIX_PATH=#{hp}
      -DCMAKE_INSTALL_SYSCONFDIR=#{etc}
      -DLOOPHOLE_TESTS=OFF
      -DLOOPHOLE_INSTALL_SERVICE=OFF
    ]
    system "cmake", "-S", ".", "-B", "build", *args, *std_cmake_args
    system "cmake", "--build", "build"
    system "cmake", "--install", "build"
  end

  # launchd runs it as root: it adds lo0 aliases and writes
  # /etc/resolver/<domain>. Homebrew's `sockets` takes only tcp/udp URLs, so
  # the daemon binds its unix control socket (/var/run/loophole.sock) itself.
  service do
    run [opt_sbin/"loopholed"]
    keep_alive true
    require_root true
    log_path var/"log/loophole.log"
    error_log_path var/"log/loophole.log"
  end

  def caveats
    <<~EOS
      loopholed must run as root (loopback aliases, /etc/resolver). Start it
      now and at every boot with:
        sudo brew services start loophole
      and check it with `loophole status` (no sudo needed).

      Settings: #{etc}/loophole/loophole.json (see loophole.json.example
      there and `man loophole.conf`).

      Before uninstalling, remove the resolver entry and stop the daemon:
        sudo loophole resolve-uninstall
        sudo brew services stop loophole
        brew uninstall loophole
      (If the daemon is already gone: sudo rm /etc/resolver/loop.test)

      `sudo brew services start` makes the keg root-owned: Homebrew gives
      root:admin loophole's opt prefix, bin and sbin (so no user can replace
      what root runs), and then `brew upgrade`, `reinstall` and `uninstall`
      cannot remove them. To undo it, stop the service and take the keg back:
        sudo brew services stop loophole
        sudo chown -R "$(whoami):admin" "$(brew --cellar)/loophole"
      then upgrade or uninstall, and `sudo brew services start loophole` again.
    EOS
  end

  test do
    assert_match(/^loophole \d+\.\d+/, shell_output("#{bin}/loophole version"))

    port = free_port
    sock = testpath/"l.sock"
    (testpath/"state").mkpath
    # No root here: no aliases, no resolver entry, and no Docker (a socket
    # that does not exist), so only the daemon itself is tested.
    pid = spawn sbin/"loopholed", "--resolver", "off", "--alias", "off",
                "--control-socket", sock.to_s, "--state-dir", (testpath/"state").to_s,
                "--dns-listen", "127.0.0.1:#{port}",
                "--docker-host", "unix://#{testpath}/none.sock",
                [:out, :err] => (testpath/"loopholed.log").to_s
    begin
      40.times do
        break if sock.socket?

        sleep 0.25
      end
      assert_predicate sock, :socket?, "loopholed made no control socket:\n#{(testpath/"loopholed.log").read}"
      status = JSON.parse(shell_output("#{bin}/loophole --socket #{sock} status --json"))
      assert_equal "127.0.0.1:#{port}", status["dns"]["listen"]
      assert_equal "loop.test", status["dns"]["domain"]
    ensure
      Process.kill("TERM", pid)
      Process.wait(pid)
    end
    assert_predicate $CHILD_STATUS, :success?, "loopholed did not exit 0 on SIGTERM"
  end
end
