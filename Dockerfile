# The epix-hub and epix-spoke binaries on Debian 12, as the Helm chart runs them.
# Build: docker build -t epix-hub:0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p epix-hub -p epix-spoke

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin epix
COPY --from=build /src/target/release/epix-hub /src/target/release/epix-spoke /usr/local/bin/
USER 10001:10001
EXPOSE 8080
ENV EPIX_HTTP_BIND=0.0.0.0:8080 EPIX_LOG_FORMAT=json
ENTRYPOINT ["epix-hub"]
CMD ["serve"]
