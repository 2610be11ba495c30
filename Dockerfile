# catdog: one image for `catdog serve`, `catdog worker` and every Kubeflow / Vertex AI pipeline step
# (`catdog component run …`). Build: docker build -t ghcr.io/catdog/catdog:latest .

# ---- build: dependencies (with the native TensorFlow binding), TypeScript → dist/ ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
# python3 + make + g++: native addons (better-sqlite3) and, when the libtensorflow download is unreachable,
# scripts/setup-tensorflow.mjs building the TensorFlow addon against the pip wheel. ca-certificates for the downloads.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-pip make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# npm ci's postinstall runs the TensorFlow setup script, so it must be there first.
COPY scripts ./scripts
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

# ---- runtime: node, production node_modules (libtensorflow inside), dist/ and the UI's static files ----
FROM node:20-bookworm-slim
# A container is reached from outside, so the server listens on every interface.
ENV NODE_ENV=production \
    CATDOG_HOME=/var/lib/catdog \
    CATDOG_HOST=0.0.0.0
WORKDIR /app
RUN groupadd --system catdog \
 && useradd --system --gid catdog --home-dir /var/lib/catdog --create-home catdog
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/src/web/static ./src/web/static
RUN chmod +x dist/cli/main.js && ln -s /app/dist/cli/main.js /usr/local/bin/catdog
USER catdog
VOLUME ["/var/lib/catdog"]
EXPOSE 8080
ENTRYPOINT ["catdog"]
CMD ["serve"]
