# The forklift SDK image that generated services build in (their Dockerfile's first stage and
# their CI's `test` job): Debian with forklift installed under /usr/local, and everything needed
# to build and test a service against it (compilers, CMake, the -dev libraries, Python with
# xgboost, torch and scikit-learn).
#
#   docker build -f docker/forklift-sdk.Dockerfile -t REGISTRY/forklift-sdk:0.1 .
#
# Not built on forklift's own CI machine, which has no Docker engine.
# BASE: scripts/images.sh's localhost/forklift-base:bookworm where no registry is reachable.
ARG BASE=debian:bookworm
FROM ${BASE}
COPY . /src
RUN /src/scripts/install-deps.sh \
 && cd /src && scripts/build.sh \
 && cmake --install build --prefix /usr/local \
 && rm -rf /src/build /var/lib/apt/lists/*
ENV FORKLIFT_PREFIX=/usr/local
