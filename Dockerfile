# The upload worker's image: `docker build -t upload-saga .` (docker-compose.yml builds it as `worker`).
#
# Why it is built this way:
# - No build step: the worker runs the TypeScript sources through tsx, which is a runtime
#   dependency (see package.json), so `npm ci --omit=dev` installs everything it needs and leaves
#   out the compiler, linters and test tools. Temporal's workflow bundler (webpack + swc) ships
#   with @temporalio/worker and compiles src/workflows at start.
# - Debian slim rather than Alpine: Temporal's native core is built against glibc.
# - Dependencies are installed before the sources are copied, so a code change rebuilds one layer.
# - The process runs as the unprivileged `node` user; upload sources are read from /data/inbox
#   (mount files there; UPLOAD_SAGA_ALLOWED_ROOTS allows nothing else by default).
# - SIGTERM (docker stop) makes the worker stop polling and finish or hand back its tasks.
FROM node:20-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src

RUN mkdir -p /data/inbox && chown node:node /data/inbox
ENV UPLOAD_SAGA_ALLOWED_ROOTS=/data/inbox
USER node

CMD ["node", "bin/upload-saga.cjs", "worker"]
