#!/bin/sh
# Checks demes.service and demes.sysusers without installing them:
# systemd-analyze verify on a copy of the unit whose ExecStart names a demes
# built here (verify wants the binary to exist), the offline security
# report, and systemd-sysusers into a scratch root. Needs systemd's tools,
# not a running systemd. Exits 77 (skipped) without systemd-analyze.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
command -v systemd-analyze >/dev/null 2>&1 || { echo "verify: no systemd-analyze: skipped" >&2; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$here/../.." && CGO_ENABLED=0 go build -o "$tmp/demes" ./cmd/demes)
sed "s|/usr/local/bin/demes|$tmp/demes|" "$here/demes.service" >"$tmp/demes.service"
systemd-analyze verify "$tmp/demes.service"
systemd-analyze security --offline=true "$tmp/demes.service" | tail -n 1
mkdir -p "$tmp/root/etc"
systemd-sysusers --root="$tmp/root" "$here/demes.sysusers" 2>/dev/null
grep -q '^demes:x:[0-9]*:[0-9]*:DeMeS node:/var/lib/demes:' "$tmp/root/etc/passwd"
echo "verify: ok"
