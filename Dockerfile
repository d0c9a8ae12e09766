# syntax=docker/dockerfile:1
# reroll's own image: the CLI, and the reroll-proxy containers (`reroll proxy run`).
#
# The context is the package as npm installs it: package.json, bin/, dist/ (compiled) and
# node_modules/. `reroll proxy up` sends exactly that, with only the production dependencies;
# from a checkout, `npm ci && npm run build && docker build -t reroll .` works as well, and
# the first stage drops the development dependencies offline.
ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-slim AS package
# the classic builder leaves this stage behind as an untagged image: reroll removes it by this label
LABEL dev.reroll.image-stage="package"
WORKDIR /opt/reroll
COPY package.json package-lock.json* ./
COPY bin ./bin
COPY dist ./dist
COPY node_modules ./node_modules
RUN ["npm", "prune", "--omit=dev", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"]
# the image must be able to start the proxy: fail the build here, not at the first deploy
RUN ["node", "/opt/reroll/bin/reroll.js", "--version"]

FROM node:${NODE_VERSION}-slim AS runtime
ENV NODE_ENV=production
COPY --from=package /opt/reroll /opt/reroll
# unprivileged: the official image's `node` user; the proxy listens on ports above 1024
USER node
WORKDIR /home/node
ENTRYPOINT ["node", "/opt/reroll/bin/reroll.js"]
CMD ["--help"]
