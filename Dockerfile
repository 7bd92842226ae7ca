# syntax=docker/dockerfile:1
# One image for both snapbot processes: the control process by default
# (`node dist/bot/main.js`), a worker with `command: ["node", "dist/worker/main.js"]`.
# The image uses the current Node.js LTS; the code itself runs on Node 20.12 and newer
# (package.json `engines`), which is what CI tests on. Another base: --build-arg NODE_IMAGE=…
ARG NODE_IMAGE=node:24-trixie-slim

# ---- build: every dependency, TypeScript → dist/ ----
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# `prepare` runs the build, and the sources are not copied yet: no scripts here.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY shared ./shared
COPY worker ./worker
COPY bot ./bot
# scripts/ is part of the build (tsconfig.build.json) and its benchmarks import test helpers.
COPY scripts ./scripts
COPY test ./test
RUN npm run build

# ---- runtime: production dependencies and the compiled entry points only ----
FROM ${NODE_IMAGE} AS runtime
# tini is PID 1: it passes SIGTERM to node alone (running virsh calls are left to finish,
# as the worker promises) and reaps what a killed virsh leaves behind. virsh
# (libvirt-clients) is for the worker; the control process does not call it.
# Versions come with the base image's Debian release, not pinned one by one.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini libvirt-clients \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    SNAPBOT_DATA_DIR=/var/lib/snapbot
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force
COPY --from=build /src/dist/shared ./dist/shared
COPY --from=build /src/dist/worker ./dist/worker
COPY --from=build /src/dist/bot ./dist/bot
COPY deploy/docker/healthcheck.mjs ./deploy/docker/healthcheck.mjs
# The control process's keys (authority.key, made on first start) live here: mount a volume.
# /app stays root-owned: the process cannot change its own code.
RUN install -d -m 0700 -o node -g node /var/lib/snapbot
VOLUME ["/var/lib/snapbot"]
USER node
# Asks the process's own /healthz when METRICS_PORT is set (see deploy/docker/healthcheck.mjs).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "deploy/docker/healthcheck.mjs"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/bot/main.js"]
