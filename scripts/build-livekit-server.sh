#!/usr/bin/env bash
# Build the pinned livekit-server from its Go module, once, and print the binary's path.
#
#   scripts/build-livekit-server.sh            # prints .../livekit-server-v1.13.5/livekit-server
#
# The LiveKit tests (tests/test_livekit_server.py) run this real server offline. It is built
# with the machine's own `go` (`go install github.com/livekit/livekit-server/cmd/server@VERSION`,
# modules from the Go module proxy) into
# ${LIVEKIT_SERVER_CACHE:-$HOME/.cache/pipecat-bey}/livekit-server-VERSION/livekit-server,
# and not built again while that binary exists. Go's own caches (GOMODCACHE, GOCACHE, GOPROXY,
# GOFLAGS...) are used as Go uses them; GOTOOLCHAIN is kept local, so no other toolchain is
# fetched. A cold build takes 5-10 minutes on two cores; it runs under `nice`.
#
# The version is pinned: later releases (v1.13.6 and on) replace pion modules with forks
# that the module proxy does not serve.
set -euo pipefail

VERSION=v1.13.5
MODULE=github.com/livekit/livekit-server/cmd/server
CACHE="${LIVEKIT_SERVER_CACHE:-$HOME/.cache/pipecat-bey}"
DEST="$CACHE/livekit-server-$VERSION"
BIN="$DEST/livekit-server"

say() { echo "build-livekit-server: $*" >&2; }

built() {
  [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "version ${VERSION#v}\$"
}

if built; then
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || { say "go is not installed (https://go.dev/doc/install)"; exit 1; }
mkdir -p "$DEST"

# One build at a time: a second caller waits for the first and then finds the binary.
exec 9>"$DEST/.lock"
if command -v flock >/dev/null; then
  flock 9
fi
if built; then
  echo "$BIN"
  exit 0
fi

say "building livekit-server $VERSION with $(go version) (takes minutes the first time)"
staging=$(mktemp -d "$DEST/.build.XXXXXX")
trap 'rm -rf "$staging"' EXIT
GOBIN="$staging" GOTOOLCHAIN=local nice -n 10 go install "$MODULE@$VERSION"
[ -x "$staging/server" ] || { say "go install produced no binary in $staging"; exit 1; }
"$staging/server" --version | grep -q "version ${VERSION#v}\$" \
  || { say "the built binary is not $VERSION: $("$staging/server" --version)"; exit 1; }
mv -f "$staging/server" "$BIN"
say "built $BIN"
echo "$BIN"
