# syntax=docker/dockerfile:1
# reroll's own image: the CLI, for a CI job or a host without Node (the doors run HAProxy's image).
#
# From a checkout: `npm ci && npm run build && docker build -t reroll .`; the first stage drops
# the development dependencies offline. Run it with the daemon's socket mounted:
#   docker run --rm -v /var/run/docker.sock:/var/run/docker.sock -v "$PWD:/work" -w /work reroll up
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
# the image must be able to start the CLI: fail the build here, not in a CI job
RUN ["node", "/opt/reroll/bin/reroll.js", "--version"]

FROM node:${NODE_VERSION}-slim AS runtime
ENV NODE_ENV=production
COPY --from=package /opt/reroll /opt/reroll
WORKDIR /home/node
ENTRYPOINT ["node", "/opt/reroll/bin/reroll.js"]
CMD ["--help"]
