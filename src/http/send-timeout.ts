import type { Server } from 'node:http'
import type { Socket } from 'node:net'

// libuv's handle: `writeQueueSize` is what it still holds of the write in flight. Node counts no other way the
// bytes the kernel took within one write, and a 16 MiB page is one write.
interface StreamHandle {
  writeQueueSize?: number
}

interface Progress {
  // the last time the socket took data, or had none waiting
  at: number
  queued: number
  length: number
}

export interface SendTimeoutOptions {
  timeoutMs: number
  onTimeout: (socket: Socket, pendingBytes: number) => void
}

const queuedBytes = (socket: Socket): number => (socket as unknown as { _handle: StreamHandle | null })._handle?.writeQueueSize ?? 0

// SPEC "Details": a connection that takes no data for SEND_TIMEOUT_MS is closed, SSE streams and plain responses
// alike; this is what ends a stalled reader's hold on the page it was sent. "Takes no data": response bytes are
// waiting in the process and none of them went to the kernel for that long. A client that reads, however slowly,
// stays, and so does one with nothing waiting for it (an idle keep-alive connection, a quiet SSE stream, a request
// whose handler is still working). Progress is any of: a 'drain', less left in libuv's queue, less in the socket's.
export interface SendWatch {
  // the connections open now (every one is watched)
  readonly open: number
  // those with response bytes waiting in the process for the client to take
  readonly backedUp: number
  stop(): void
}

export const watchSendProgress = (server: Server, { timeoutMs, onTimeout }: SendTimeoutOptions): SendWatch => {
  const watched = new Map<Socket, Progress>()
  const onConnection = (socket: Socket): void => {
    const progress: Progress = { at: Date.now(), queued: 0, length: 0 }
    watched.set(socket, progress)
    socket.on('drain', () => (progress.at = Date.now()))
    socket.once('close', () => watched.delete(socket))
  }
  server.on('connection', onConnection)
  const check = (): void => {
    const now = Date.now()
    for (const [socket, progress] of watched) {
      const length = socket.writableLength
      const queued = queuedBytes(socket)
      if (length === 0 || queued < progress.queued || length < progress.length) progress.at = now
      progress.queued = queued
      progress.length = length
      if (now - progress.at < timeoutMs) continue
      watched.delete(socket)
      onTimeout(socket, length)
      socket.destroy()
    }
  }
  // the close comes between timeoutMs and a quarter more (at most a second more) after the last byte taken
  const timer = setInterval(check, Math.max(10, Math.min(1000, Math.floor(timeoutMs / 4))))
  timer.unref()
  return {
    get open() {
      return watched.size
    },
    get backedUp() {
      let count = 0
      for (const socket of watched.keys()) if (socket.writableLength > 0) count += 1
      return count
    },
    stop: () => {
      clearInterval(timer)
      server.off('connection', onConnection)
    },
  }
}
