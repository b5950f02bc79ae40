import { Duplex } from 'node:stream'
import type { PGlite } from '@electric-sql/pglite'

// Backend and frontend message types this adapter looks at (PostgreSQL protocol v3).
const READY_FOR_QUERY = 0x5a // Z
const NOTIFICATION = 0x41 // A
const QUERY = 0x51 // Q
const PARSE = 0x50 // P
const TERMINATE = 0x58 // X
const SSL_REQUEST = 80877103
const CANCEL_REQUEST = 80877102
const IDLE = 0x49 // I, the status byte of ReadyForQuery outside a transaction

// PGlite is one PostgreSQL backend: one session for the whole process. Each postgres.js connection
// gets a virtual socket, and the session belongs to one socket at a time, from its first message until
// the backend is idle again (ReadyForQuery 'I') with nothing more to send: a whole query, or a whole
// transaction. So the pool stays a pool, transactions are serialised, and no client ever sees a
// protocol exchange or an open transaction of another. NOTIFY replies are taken out of the stream of
// the socket that caused them and handed to the sockets that LISTEN on the channel.
export class PgliteSession {
  readonly #db: PGlite
  readonly #startupReply: Buffer
  readonly #waiting: VirtualSocket[] = []
  readonly #listening = new Map<string, Set<VirtualSocket>>()
  #owner: VirtualSocket | undefined
  // true while the owner's last reply ended in ReadyForQuery 'I': the session may change hands
  #idle = true
  #pumping = false

  constructor(db: PGlite, startupReply: Buffer) {
    this.#db = db
    this.#startupReply = startupReply
  }

  // the `socket` option of postgres.js
  socket = (): Duplex => new VirtualSocket(this)

  received(socket: VirtualSocket, message: Buffer): void {
    if (message[0] === QUERY || message[0] === PARSE) message = this.#listenQuery(socket, message)
    socket.outbox.push(message)
    if (socket !== this.#owner && !this.#waiting.includes(socket)) this.#waiting.push(socket)
    void this.#pump()
  }

  startup(socket: VirtualSocket, message: Buffer): void {
    const code = message.readInt32BE(4)
    // answered on a later tick, as a network would: postgres.js is still setting the connection up
    if (code === SSL_REQUEST) return void process.nextTick(() => socket.push(Buffer.from('N')))
    if (code === CANCEL_REQUEST) return void socket.destroy()
    process.nextTick(() => socket.push(this.#startupReply))
  }

  closed(socket: VirtualSocket): void {
    for (const sockets of this.#listening.values()) sockets.delete(socket)
    const index = this.#waiting.indexOf(socket)
    if (index >= 0) this.#waiting.splice(index, 1)
    if (socket === this.#owner) void this.#pump()
  }

  // The session's LISTEN is shared: a socket that UNLISTENs must not silence the others, so the
  // session keeps listening and the socket stops receiving (a harmless UNLISTEN of nothing answers it).
  #listenQuery(socket: VirtualSocket, message: Buffer): Buffer {
    // Query: text. Parse: statement name, text, parameter types.
    const textStart = message[0] === QUERY ? 5 : message.indexOf(0, 5) + 1
    const textEnd = message.indexOf(0, textStart)
    const match = /^\s*(un)?listen\s+"?([^";\s]+)"?\s*;?\s*$/i.exec(message.toString('utf8', textStart, textEnd))
    if (!match) return message
    const channel = match[2]!
    if (!match[1]) {
      if (!this.#listening.has(channel)) this.#listening.set(channel, new Set())
      this.#listening.get(channel)!.add(socket)
      return message
    }
    this.#listening.get(channel)?.delete(socket)
    const body = Buffer.concat([message.subarray(5, textStart), Buffer.from('unlisten annalist_never_listened'), message.subarray(textEnd)])
    const header = Buffer.alloc(5)
    header[0] = message[0]!
    header.writeInt32BE(body.length + 4, 1)
    return Buffer.concat([header, body])
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return
    this.#pumping = true
    try {
      for (;;) {
        const owner = this.#owner
        if (!owner) {
          this.#owner = this.#waiting.shift()
          if (!this.#owner) return
          continue
        }
        if (owner.destroyed) {
          // a socket that died inside a transaction must not leave it open for the next owner
          if (!this.#idle) await this.#exec(Buffer.concat([SYNC, simpleQuery('rollback')]))
          this.#idle = true
          this.#owner = undefined
          continue
        }
        if (owner.outbox.length === 0) {
          if (!this.#idle) return
          this.#owner = undefined
          continue
        }
        // between whole exchanges, a socket that keeps pipelining queries takes its turn behind the others
        if (this.#idle && this.#waiting.length > 0 && owner.sent) {
          owner.sent = false
          this.#waiting.push(owner)
          this.#owner = undefined
          continue
        }
        const request = Buffer.concat(owner.outbox.splice(0))
        owner.sent = true
        const reply = await this.#exec(request)
        if (!owner.destroyed) owner.push(reply)
      }
    } catch (error) {
      // the backend itself failed: no socket can trust the session any more
      for (const socket of [this.#owner, ...this.#waiting]) socket?.destroy(error as Error)
      this.#owner = undefined
      this.#waiting.length = 0
    } finally {
      this.#pumping = false
    }
  }

  // Sends whole frontend messages, returns the reply without its notifications (delivered apart) and
  // notes whether the backend is idle.
  async #exec(request: Buffer): Promise<Buffer> {
    const raw = Buffer.from(await this.#db.execProtocolRaw(request, { syncToFs: false }))
    this.#idle = false
    const kept: Buffer[] = []
    let start = 0
    let offset = 0
    while (offset + 5 <= raw.length) {
      const type = raw[offset]!
      const end = offset + 1 + raw.readInt32BE(offset + 1)
      if (type === READY_FOR_QUERY) this.#idle = raw[offset + 5] === IDLE
      else if (type === NOTIFICATION) {
        kept.push(raw.subarray(start, offset))
        this.#notify(raw.subarray(offset, end))
        start = end
      }
      offset = end
    }
    kept.push(raw.subarray(start))
    return kept.length === 1 ? kept[0]! : Buffer.concat(kept)
  }

  #notify(message: Buffer): void {
    const channelEnd = message.indexOf(0, 9)
    const channel = message.toString('utf8', 9, channelEnd)
    for (const socket of this.#listening.get(channel) ?? []) if (!socket.destroyed) socket.push(Buffer.from(message))
  }
}

const SYNC = Buffer.from([0x53, 0, 0, 0, 4])

const simpleQuery = (text: string): Buffer => {
  const body = Buffer.from(text + '\0')
  const header = Buffer.alloc(5)
  header[0] = QUERY
  header.writeInt32BE(body.length + 4, 1)
  return Buffer.concat([header, body])
}

export const startupMessage = (parameters: Record<string, string>): Buffer => {
  const pairs = Object.entries(parameters).flatMap(([name, value]) => [name, value])
  const body = Buffer.concat([Buffer.from([0, 3, 0, 0]), ...pairs.map((text) => Buffer.from(text + '\0')), Buffer.from([0])])
  const length = Buffer.alloc(4)
  length.writeInt32BE(body.length + 4)
  return Buffer.concat([length, body])
}

// What postgres.js needs of a net.Socket: a Duplex with readyState, setKeepAlive and a close event.
class VirtualSocket extends Duplex {
  readonly outbox: Buffer[] = []
  // has had the session since it last waited for it
  sent = false
  #pending: Buffer = Buffer.alloc(0)
  #startedUp = false

  constructor(private readonly session: PgliteSession) {
    super()
  }

  get readyState(): string {
    return this.destroyed ? 'closed' : 'open'
  }

  setKeepAlive(): this {
    return this
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk])
    for (;;) {
      const headerLength = this.#startedUp ? 1 : 0
      if (this.#pending.length < headerLength + 4) break
      const end = headerLength + this.#pending.readInt32BE(headerLength)
      if (this.#pending.length < end) break
      const message = this.#pending.subarray(0, end)
      this.#pending = this.#pending.subarray(end)
      if (!this.#startedUp) {
        this.#startedUp = message.readInt32BE(4) !== SSL_REQUEST
        this.session.startup(this, message)
      } else if (message[0] === TERMINATE) {
        this.destroy()
        break
      } else this.session.received(this, message)
    }
    callback()
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.destroy()
    callback()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.session.closed(this)
    callback(error)
  }
}
