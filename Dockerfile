# syntax=docker/dockerfile:1
# The blog on Fly.io: LiteFS mounts /litefs, then runs `blog migrate` (candidates only) and
# `blog serve` as configured in litefs.yml. See docs/deploy.md.

# --- build ---------------------------------------------------------------------------------------
# cargo-chef caches the dependencies: `prepare` reduces the workspace to a recipe (manifests and
# lock file), `cook` builds only the dependencies from it. That layer is rebuilt only when the
# recipe changes, not on every source edit.
FROM rust:1-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --bin blog --recipe-path recipe.json
# The real sources (askama compiles templates/ into the binary).
COPY . .
RUN cargo build --release --locked --bin blog

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
