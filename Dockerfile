# Build: Swift with hiredis headers; run: a slim Debian with the hiredis runtime.
FROM swift:6.0-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libhiredis-dev zlib1g-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN swift build -c release --product conveyor --static-swift-stdlib \
 && cp "$(swift build -c release --show-bin-path)/conveyor" /usr/local/bin/conveyor

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libhiredis0.14 zlib1g ca-certificates tzdata && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/conveyor /usr/local/bin/conveyor
RUN mkdir -p /var/lib/conveyor/history && chown nobody /var/lib/conveyor/history
USER nobody
ENTRYPOINT ["conveyor"]
CMD ["worker"]
