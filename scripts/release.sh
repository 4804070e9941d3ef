#!/usr/bin/env bash
# Builds izdrop's release binaries: static (no cgo: SQLite is pure Go), for
# the platforms clinics run, into dist/ (git ignores it), with the version,
# commit and commit time that `izdrop version` prints, and their SHA-256
# sums in dist/SHA256SUMS.
#
#   scripts/release.sh              version from git describe (a tag, or dev-COMMIT)
#   VERSION=v1.2.0 scripts/release.sh
#   TARGETS="linux/amd64" scripts/release.sh
set -euo pipefail
cd "$(dirname "$0")/.."

targets=${TARGETS:-"linux/amd64 linux/arm64 windows/amd64 darwin/arm64"}
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
commit_time=$(git show -s --format=%cI HEAD 2>/dev/null || echo unknown)
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
case "$version" in v*) ;; *) version="dev-$version" ;; esac
ldflags="-s -w -X main.version=$version -X main.commit=$commit -X main.commitTime=$commit_time"

mkdir -p dist
for t in $targets; do
  os=${t%/*} arch=${t#*/}
  out="dist/izdrop-$version-$os-$arch"
  [ "$os" = windows ] && out="$out.exe"
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/izdrop
  echo "$out"
done
(cd dist && sha256sum izdrop-"$version"-* > SHA256SUMS)
