#!/usr/bin/env bash
# Builds forklift's images from the release build (scripts/build.sh first):
#   forklift:VERSION, forklift:VERSION-python and forklift:VERSION-torch, the server
#     (docker/forklift.Dockerfile says what is in each);
#   forklift-sdk:VERSION, what teams build their services in (docker/forklift-sdk.Dockerfile);
# on a Debian bookworm base image made here from Debian's own packages when it is missing
# (debootstrap --variant=minbase, trimmed like debian:bookworm-slim, imported as
# localhost/forklift-base:bookworm), since no image registry may be reachable. Everything lands in
# build-images/; the base is made once per build tree.
#
#   scripts/images.sh [--engine podman|docker] [--build-dir DIR] [--base-only]
#                     [--only plain|python|torch|sdk]...   (default: all four)
#
# Making the base needs root (debootstrap). The base is remade when this build tree has no record
# of it (build-images/base-image-id), so a clean clone never reuses another tree's base.
#
# With podman (the default) it runs as this machine needs: runc, cgroupfs, no default ulimits
# (build-images/containers.conf). With docker the plain image builds FROM the base given by
# FORKLIFT_BASE_IMAGE (default debian:bookworm-slim, from Docker Hub); python and torch then
# build FROM the plain one, and the SDK FROM the torch one, as with podman.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/build-images"
engine=podman
base_only=0
build="$root/build"
variants=()
usage="usage: scripts/images.sh [--engine podman|docker] [--build-dir DIR] [--base-only] [--only plain|python|torch|sdk]..."
while [ $# -gt 0 ]; do
  case "$1" in
    --engine) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; engine=$2; shift ;;
    --build-dir) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; build=$(cd "$2" && pwd); shift ;;
    --base-only) base_only=1 ;;
    --only)
      case "${2:-}" in plain | python | torch | sdk) variants+=("$2") ;; *) echo "$usage" >&2; exit 2 ;; esac
      shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
[ ${#variants[@]} -gt 0 ] || variants=(plain python torch sdk)
mkdir -p "$out"

if [ "$engine" = podman ]; then
  printf '[containers]\ndefault_ulimits = []\n' > "$out/containers.conf"
  export CONTAINERS_CONF="$out/containers.conf"
  run_engine() { podman --runtime runc --cgroup-manager cgroupfs "$@"; }
  # Docker's image format: OCI's has no HEALTHCHECK, which podman would drop.
  build_format=(--format docker)
  pull_base=()
  base=localhost/forklift-base:bookworm
  # The images' packages come from this host's apt cache where it has them (an overlay: the
  # host's copy is not changed), instead of a second download (a gigabyte for the SDK).
  apt_cache=()
  if compgen -G "/var/cache/apt/archives/*.deb" > /dev/null; then
    apt_cache=(-v /var/cache/apt/archives:/var/cache/apt/archives:O)
  fi
else
  run_engine() { docker "$@"; }
  build_format=()
  pull_base=(--pull)  # a stale local debian:bookworm-slim would miss security fixes
  apt_cache=()
  base=${FORKLIFT_BASE_IMAGE:-debian:bookworm-slim}  # must be bookworm: the package names are
fi
command -v "$engine" >/dev/null || { echo "images: $engine is missing: run scripts/install-deps.sh" >&2; exit 2; }

# The base image, from Debian's packages.
base_record="$out/base-image-id"
if [ "$engine" = podman ] && { [ ! -f "$base_record" ] ||
     [ "$(run_engine image inspect "$base" --format '{{.Id}}' 2>/dev/null)" != "$(cat "$base_record")" ]; }; then
  command -v debootstrap >/dev/null || { echo "images: debootstrap is missing: run scripts/install-deps.sh" >&2; exit 2; }
  rootfs="$out/rootfs"
  rm -rf "$rootfs"
  echo "images: making $base with debootstrap (about a minute)"
  debootstrap --variant=minbase bookworm "$rootfs" > "$out/debootstrap.log" 2>&1 \
    || { tail -20 "$out/debootstrap.log" >&2; exit 1; }
  # As debian:bookworm-slim: no documentation, manual pages or translations, now or later.
  cat > "$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
SLIM
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/cache/apt/archives/*.deb \
         "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  # Security fixes and point-release updates too (applied below); nothing of this host.
  cat > "$rootfs/etc/apt/sources.list" <<'SOURCES'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
  # Upgraded here, not in the Dockerfile: an upgrade in a layer above would carry both copies.
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  { chroot "$rootfs" apt-get update -q && chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive \
      apt-get upgrade -y -q; } >> "$out/debootstrap.log" 2>&1 || { tail -20 "$out/debootstrap.log" >&2; exit 1; }
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  rm -f "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"
  tar -C "$rootfs" -c . | run_engine import - "$base" > "$out/import.log" 2>&1 \
    || { tail -20 "$out/import.log" >&2; exit 1; }
  run_engine image inspect "$base" --format '{{.Id}}' > "$base_record"
  rm -rf "$rootfs"
fi
[ "$base_only" = 1 ] && exit 0

[ -x "$build/forklift" ] || { echo "images: $build/forklift is missing: run scripts/build.sh" >&2; exit 2; }
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
[ -n "$version" ] || { echo "images: no project version in $build/CMakeCache.txt" >&2; exit 2; }
staging="$out/install"
rm -rf "$staging"
cmake --install "$build" --prefix "$staging" > /dev/null
# Builds one image from a prepared context and says how large it is and how long it took.
# FROM is the Debian base unless from_image names an image this run built: such an image is
# local only, so Docker's --pull is not passed for it.
build_image() {  # variant tag dockerfile context from_image [extra build arguments...]
  local variant=$1 tag=$2 dockerfile=$3 ctx=$4 from=${5:-} started size pull=()
  shift 5
  [ -n "$from" ] || { from=$base; pull=(${pull_base[@]+"${pull_base[@]}"}); }
  started=$(date +%s)
  run_engine build ${build_format[@]+"${build_format[@]}"} ${pull[@]+"${pull[@]}"} --network host \
    -f "$root/docker/$dockerfile" --build-arg "BASE=$from" "$@" -t "localhost/$tag" "$ctx" \
    > "$out/build-$variant.log" 2>&1 \
    || { tail -30 "$out/build-$variant.log" >&2; exit 1; }
  size=$(run_engine image inspect "localhost/$tag" --format '{{.Size}}')
  echo "images: localhost/$tag: $((size / 1000000)) MB, built in $(( $(date +%s) - started )) s"
}

built_plain=""
built_torch=""
# In this order whatever order --only gave: python and torch build on the plain image, the SDK on
# the torch image, each when this run built it (never an older one).
for variant in plain python torch sdk; do
  case " ${variants[*]} " in *" $variant "*) ;; *) continue ;; esac
  ctx="$out/context-$variant"
  rm -rf "$ctx"
  if [ "$variant" = sdk ]; then
    # The whole install (the command, libraries, headers, CMake package, modules, templates);
    # the binary keeps its debug information, for a team's debugger.
    mkdir -p "$ctx"
    cp -a "$staging" "$ctx/out"
    cp "$root/scripts/install-deps.sh" "$ctx/"
    # FROM the torch server image when this run built it (never an older one): libtorch is then
    # unpacked once for both (measured: see docs/how-to/build-and-run-the-images.md).
    echo "images: building forklift-sdk:$version (installs the build packages: minutes)"
    build_image sdk "forklift-sdk:$version" forklift-sdk.Dockerfile "$ctx" "$built_torch" \
      ${apt_cache[@]+"${apt_cache[@]}"}
    continue
  fi
  mkdir -p "$ctx/out"
  # The binary without its debug information (39 MB -> 7 MB); the UI it serves at /ui/. A
  # variant built on this run's plain image has them already.
  if [ "$variant" = plain ] || [ -z "$built_plain" ]; then
    mkdir -p "$ctx/out/bin" "$ctx/out/share"
    strip --strip-debug -o "$ctx/out/bin/forklift" "$staging/bin/forklift"
    cp -r "$staging/share/forklift" "$ctx/out/share/"
  fi
  tag="forklift:$version"
  if [ "$variant" != plain ]; then
    # One runtime module beside the binary (lib/forklift/), and in the image its libraries.
    module=libforklift_torchscript.so
    [ "$variant" = python ] && module=libforklift_python.so
    if [ ! -f "$staging/lib/forklift/$module" ]; then
      echo "images: forklift:$version-$variant skipped: this build has no $variant runtime"
      continue
    fi
    mkdir -p "$ctx/out/lib/forklift"
    cp "$staging/lib/forklift/$module" "$ctx/out/lib/forklift/"
    tag="forklift:$version-$variant"
  fi
  echo "images: building $tag"
  build_image "$variant" "$tag" forklift.Dockerfile "$ctx" "$built_plain" \
    --build-arg "RUNTIME=$variant" ${apt_cache[@]+"${apt_cache[@]}"}
  if [ "$variant" = plain ]; then built_plain="localhost/$tag"; fi
  if [ "$variant" = torch ]; then built_torch="localhost/$tag"; fi
done
