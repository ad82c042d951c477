# The upload worker's image: `docker build -t upload-saga .` (docker-compose.yml builds it as `worker`).
#
# Why it is built this way:
# - Two stages: `build` installs every dependency and runs `npm run build` (TypeScript compiled to
#   dist/, the workflow code bundled ahead of time, the gateway page prebuilt); the runtime stage
#   installs the production dependencies only and copies dist/. Nothing compiles or bundles at
#   start, and neither tsx, TypeScript nor esbuild is in the image.
# - Debian slim rather than Alpine: Temporal's native core is built against glibc.
# - Dependencies are installed before the sources are copied, so a code change rebuilds one layer.
# - The process runs as the unprivileged `node` user; upload sources are read from /data/inbox
#   (mount files there; UPLOAD_SAGA_ALLOWED_ROOTS allows nothing else by default).
# - SIGTERM (docker stop) makes the worker stop polling and finish or hand back its tasks.
FROM node:24-bookworm-slim AS build

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY bin ./bin
COPY --from=build /app/dist ./dist

RUN mkdir -p /data/inbox && chown node:node /data/inbox
ENV UPLOAD_SAGA_ALLOWED_ROOTS=/data/inbox
USER node

CMD ["node", "dist/cli/main.js", "worker"]
