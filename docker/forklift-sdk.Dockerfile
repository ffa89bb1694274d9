# The forklift SDK image that generated services build in (their Dockerfile's first stage and
# their CI's `test` job): Debian with forklift installed under /usr/local (the command, the
# libraries and headers a team's service links, the CMake package, the torchscript and python
# modules (lib/forklift/), the templates and the UI), and what building and testing a service needs: compilers, CMake, the
# -dev libraries, GoogleTest, Python with xgboost, torch and scikit-learn
# (scripts/install-deps.sh --sdk). No test servers, browsers or npm packages.
#
# Built by scripts/images.sh from a context it prepares: install-deps.sh, and out/ (an install of
# the release build tree):
#   scripts/build.sh && scripts/images.sh --only sdk
# BASE is the Debian base, or the torch server image of the same build when the script has just
# built it: libtorch, the largest of the packages, is then unpacked once for both images, and
# their layers are shared. What the server image sets for running is undone below.
ARG BASE=localhost/forklift-base:bookworm
FROM ${BASE}
USER root
COPY install-deps.sh /tmp/install-deps.sh
RUN /tmp/install-deps.sh --sdk \
 && apt-get clean \
 && rm -rf /tmp/install-deps.sh /var/lib/apt/lists/* /var/cache/apt/*.bin
COPY out/ /usr/local/
ENV FORKLIFT_PREFIX=/usr/local
HEALTHCHECK NONE
ENTRYPOINT []
CMD ["bash"]
