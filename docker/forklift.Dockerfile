# forklift's server image: the `forklift` binary (stripped), the web UI and nothing to build
# with, on Debian bookworm with only the libraries it loads. Built by scripts/images.sh from a
# context it prepares (out/: an install of the build tree), in three variants:
#   forklift:VERSION         the xgboost, tree, online and constant runtimes: no Python, no libtorch
#   forklift:VERSION-python  the same plus the python runtime's module, libpython and numpy
#   forklift:VERSION-torch   the same as the first plus the torchscript runtime's module and libtorch
# Each optional runtime is a module (lib/forklift/) that the server opens on the first version
# that needs it; in an image without it, such a version fails to load and says so.
#
# Runs as uid 10001, works with a read-only root file system (it writes nothing but what its
# flags name), and is PID 1: forklift handles SIGTERM itself and drains (docs/reference/cli.md).
# BASE is the Debian base, or for the python and torch variants the plain image of the same
# run when the script has just built it: the libraries all three load are then unpacked once
# and their layers shared (apt-get below skips the packages already installed, so it adds only
# the variant's own).
ARG BASE=localhost/forklift-base:bookworm
FROM ${BASE}
# The plain image ends as uid 10001; installing needs root.
USER root
ARG RUNTIME=plain
# The upgrade is a no-op on a fresh base (scripts/images.sh upgrades it); it matters on an older one.
# The user exists already when BASE is the plain image (with another uid, useradd fails).
RUN apt-get update \
 && apt-get upgrade -y \
 && apt-get install -y --no-install-recommends libxgboost0 libyaml-cpp0.7 libsimdjson14 libpq5 \
      libcurl4 libssl3 libtinyxml2-9 libgrpc++1.51 libprotobuf32 ca-certificates curl \
      $( [ "$RUNTIME" = python ] && echo libpython3.11 python3-numpy ) \
      $( [ "$RUNTIME" = torch ] && echo libtorch1.13 ) \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && { [ "$(id -u forklift 2> /dev/null)" = 10001 ] \
      || useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin forklift; }
COPY out/ /usr/local/
USER 10001
EXPOSE 8080 8081
# Ready once every model that must be is loaded (a different --port needs its own healthcheck).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/usr/local/bin/forklift", "serve"]
# The admin API stays inside the container unless asked for (--admin-host 0.0.0.0, with an admin
# token from a mounted file: --admin-token-file).
CMD ["--model-repository", "/models", "--host", "0.0.0.0", "--state-file", "none"]
