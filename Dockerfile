# syntax=docker/dockerfile:1
# The blog on Fly.io: LiteFS mounts /litefs, then runs `blog migrate` (candidates only) and
# `blog serve` as configured in litefs.yml. See docs/deploy.md.

# --- build ---------------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /app

# Dependencies first, against placeholder sources: this layer is rebuilt only when a manifest or
# Cargo.lock changes, not on every source edit.
COPY Cargo.toml Cargo.lock ./
COPY migration/Cargo.toml migration/Cargo.toml
COPY crates/sea-orm-litefs/Cargo.toml crates/sea-orm-litefs/Cargo.toml
# (Cargo.toml names a bench target, so its file must exist too; it is never built here.)
RUN mkdir -p src migration/src crates/sea-orm-litefs/src benches \
 && echo 'fn main() {}' > src/main.rs \
 && echo 'fn main() {}' > benches/forwarding.rs \
 && touch src/lib.rs migration/src/lib.rs crates/sea-orm-litefs/src/lib.rs \
 && cargo build --release --locked --bin blog \
 && rm -rf src migration/src crates/sea-orm-litefs/src \
      target/release/blog target/release/deps/blog-* target/release/deps/libblog-* \
      target/release/.fingerprint/blog-* \
      target/release/deps/libmigration-* target/release/.fingerprint/migration-* \
      target/release/deps/libsea_orm_litefs-* target/release/.fingerprint/sea-orm-litefs-*

# The real sources. askama compiles templates/ into the binary.
COPY src src
COPY migration/src migration/src
COPY crates/sea-orm-litefs/src crates/sea-orm-litefs/src
COPY templates templates
COPY static static
# COPY keeps the files' own mtimes, which can be older than the placeholders': make sure cargo
# sees them as changed.
RUN find src migration/src crates/sea-orm-litefs/src templates -type f -exec touch {} + \
 && cargo build --release --locked --bin blog

# --- run -----------------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update -y \
 && apt-get install -y --no-install-recommends ca-certificates fuse3 sqlite3 \
 && rm -rf /var/lib/apt/lists/*

COPY --from=flyio/litefs:0.5 /usr/local/bin/litefs /usr/local/bin/litefs
COPY --from=builder /app/target/release/blog /usr/local/bin/blog

# The app serves ./static; LiteFS runs it (and `blog migrate`) from this directory.
WORKDIR /app
COPY static /app/static

# Where `litefs mount` looks for its config when given no -config flag.
COPY litefs.yml /etc/litefs.yml

EXPOSE 8080
ENTRYPOINT ["litefs", "mount"]
