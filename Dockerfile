# syntax=docker/dockerfile:1
# reroll's own image: the CLI, and from the proxy on, the reroll-proxy container.
# Multi-stage: the build stage compiles TypeScript with dev dependencies; the runtime stage
# holds only the compiled code and production dependencies, and runs as the unprivileged
# `node` user of the official image.
ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:${NODE_VERSION}-slim AS runtime
ENV NODE_ENV=production
WORKDIR /opt/reroll
COPY --from=build --chown=root:root /src/node_modules ./node_modules
COPY --from=build --chown=root:root /src/dist ./dist
COPY --chown=root:root package.json ./
COPY --chown=root:root bin ./bin
USER node
ENTRYPOINT ["node", "/opt/reroll/bin/reroll.js"]
CMD ["--help"]
