import type { Server } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import type { Metrics } from '../observability/metrics.js'
import { watchSendProgress } from './send-timeout.js'

// the refusals at MAX_CONNECTIONS come in floods: one warning per this long says so
const REFUSED_WARNING_MS = 10_000

type Limits = Pick<Config, 'MAX_CONNECTIONS' | 'SEND_TIMEOUT_MS'>

// What bounds the clients' hold on the process as a whole (docs/operations.md "Slow clients and memory"): at most
// MAX_CONNECTIONS connections, each closed once it takes no data for SEND_TIMEOUT_MS; request bodies are bounded
// in time by Fastify's requestTimeout (app.ts). Returns the function that stops the watch.
export const limitConnections = (server: Server, limits: Limits, log: FastifyBaseLogger, metrics: Metrics): (() => void) => {
  server.maxConnections = limits.MAX_CONNECTIONS
  let warnedAt = 0
  server.on('drop', () => {
    metrics.connectionClosed('connection-limit')
    if (Date.now() - warnedAt < REFUSED_WARNING_MS) return
    warnedAt = Date.now()
    log.warn({ maxConnections: limits.MAX_CONNECTIONS }, 'MAX_CONNECTIONS connections are open: new ones are refused')
  })
  server.on('clientError', (error: NodeJS.ErrnoException) => {
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') metrics.connectionClosed('request-timeout')
  })
  const watch = watchSendProgress(server, {
    timeoutMs: limits.SEND_TIMEOUT_MS,
    onTimeout: (socket, pendingBytes) => {
      metrics.connectionClosed('send-timeout')
      log.warn({ remoteAddress: socket.remoteAddress, remotePort: socket.remotePort, pendingBytes }, 'connection closed: it took no data for SEND_TIMEOUT_MS')
    },
  })
  metrics.connectionsGauges(watch)
  return watch.stop
}
