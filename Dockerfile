# syntax=docker/dockerfile:1

# Build: dev dependencies and the TypeScript compiler stay in this stage.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# patches/ holds fixes to dependencies that npm ci applies (patch-package, postinstall)
COPY patches ./patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY routes ./routes
RUN npm run build && npm prune --omit=dev

# Runtime: compiled code, production dependencies, migrations and the contract; runs as the non-root node user.
# Without DATABASE_URL the server keeps an embedded database in DATA_DIR (/data, a volume); with it, /data stays empty.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
RUN mkdir -p /data && chown node:node /data
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node package.json openapi.yaml ./
COPY --chown=node:node sql ./sql
COPY --chown=node:node public ./public
USER node
VOLUME ["/data"]
EXPOSE 3000
# node's own fetch: the slim image has no curl. Ready means migrated and the database answering.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# exec form: node is PID 1 and gets SIGTERM itself, which drains requests before it exits
CMD ["node", "dist/src/server.js"]
