# echolab's servers and load generator, built from Debian 12 packages only.
# Works with the classic builder (no BuildKit-only syntax), so Debian's docker.io and
# docker-compose 1.29 build it as they are.

FROM debian:bookworm-slim AS build
# The libraries are those of scripts/install-deps.sh (a test keeps the two lists in step).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake g++ make pkg-config \
      libasio-dev node-llhttp prometheus-cpp-dev libcli11-dev libgtest-dev libbenchmark-dev \
      nlohmann-json3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The sources the binaries are built from, and nothing else (no tests: ECHOLAB_TESTS=OFF), so
# that editing docs, dashboards or tests does not rebuild the C++.
COPY CMakeLists.txt ./
COPY common common
COPY servers servers
COPY loadgen loadgen
COPY probes probes
# Warnings are errors in the test builds (make test); here a warning that only one compiler
# version and optimisation level raises must not stop the stack from building.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DECHOLAB_BENCH=OFF -DECHOLAB_TESTS=OFF -DECHOLAB_FLOOR=OFF \
      -DECHOLAB_WERROR=OFF \
 && cmake --build /build -j "$(nproc)" \
      --target echolab-prefork echolab-threads echolab-pool echolab-hybrid echolab-load

FROM debian:bookworm-slim AS runtime
# Only what the binaries load at run time: prometheus-cpp's pull and core libraries (which bring
# civetweb and zlib); libstdc++ is already part of the base.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libprometheus-cpp-pull1.0 libprometheus-cpp-core1.0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin echolab
COPY --from=build /build/bin/echolab-prefork /build/bin/echolab-threads /build/bin/echolab-pool \
     /build/bin/echolab-hybrid \
     /build/bin/echolab-load /usr/local/bin/
# Fails the build if a shared library the binaries need is missing from this stage.
RUN ! ldd /usr/local/bin/echolab-* | grep 'not found'
USER echolab
EXPOSE 8081 8082 8083 8084 9101 9102 9103 9104
CMD ["echolab-pool", "--listen", "0.0.0.0:8083", "--metrics-listen", "0.0.0.0:9103"]
