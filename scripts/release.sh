#!/bin/sh
# Builds the release binaries of demes: static (CGO_ENABLED=0), -trimpath,
# the version and commit stamped into internal/version, for linux, darwin
# and windows on amd64 and arm64, with a SHA256SUMS file beside them.
#
#   scripts/release.sh [VERSION]
#
# VERSION defaults to `git describe --tags --always --dirty` (tag releases
# as vX.Y.Z, so that `go install github.com/demes/demes/cmd/demes@vX.Y.Z`
# and these binaries report the same version). TARGETS="linux/amd64 ..."
# builds only those; OUT (default dist/VERSION) is where they go. The binary
# for the machine running the script, if built, is run once to check that
# it reports VERSION.
set -eu

cd "$(dirname "$0")/.."
version=${1:-$(git describe --tags --always --dirty)}
commit=$(git rev-parse HEAD)
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
	commit="$commit+dirty"
	echo "release: the tree has uncommitted changes; the binaries say so ($commit)" >&2
fi
targets=${TARGETS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64"}
out=${OUT:-dist/$version}
mkdir -p "$out"

pkg=github.com/demes/demes/internal/version
ldflags="-s -w -X $pkg.Version=$version -X $pkg.Commit=$commit"
host="$(go env GOOS)/$(go env GOARCH)"
files=""
for t in $targets; do
	os=${t%/*} arch=${t#*/}
	name="demes-$version-$os-$arch"
	[ "$os" = windows ] && name="$name.exe"
	echo "release: building $name" >&2
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "$ldflags" -o "$out/$name" ./cmd/demes
	files="$files $name"
	if [ "$t" = "$host" ]; then
		got=$("$out/$name" version | tail -n 1)
		[ "$got" = "$version" ] || { echo "release: $name reports version $got, want $version" >&2; exit 1; }
	fi
done

# shellcheck disable=SC2086 # $files is a list of plain file names
if command -v sha256sum >/dev/null 2>&1; then
	(cd "$out" && sha256sum $files >SHA256SUMS)
else
	(cd "$out" && shasum -a 256 $files >SHA256SUMS)
fi
echo "release: $out:" >&2
cat "$out/SHA256SUMS"
