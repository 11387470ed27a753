# rolechain's image: the one binary (agent, webhook, and the rest) on distroless, non-root.
#   docker build -t rolechain .
# deploy/ refers to it as `rolechain` (kustomize's images: rewrite it to your registry).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p rolechain \
 && strip target/release/rolechain

# glibc and libgcc only (the binary links nothing else: TLS is rustls with aws-lc, statically).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/rolechain /usr/local/bin/rolechain
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/rolechain"]
