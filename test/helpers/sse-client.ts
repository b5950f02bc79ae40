import { Client } from 'undici'
import { waitFor } from './wait-for.js'

export interface SseMessage {
  id: string | undefined
  event: string | undefined
  data: string
  receivedAt: number
}

export interface SseEvent {
  globalPosition: number
  streamId: string
  streamVersion: number
  eventId: string
  type: string
  data: any
  metadata: Record<string, unknown>
  createdAt: string
}

type Body = Awaited<ReturnType<Client['request']>>['body']

// A server-sent events reader over a real socket (undici): it parses messages and comments as they arrive and
// can stop reading (pause) so the server meets TCP back-pressure.
export class SseClient {
  readonly messages: SseMessage[] = []
  readonly comments: string[] = []
  #buffer = ''
  #ended = false

  private constructor(
    readonly status: number,
    readonly headers: Record<string, string | string[] | undefined>,
    readonly body: Body,
    private readonly connection: Client,
  ) {
    body.setEncoding('utf8')
    body.on('data', (chunk: string) => this.#parse(chunk))
    body.on('end', () => (this.#ended = true))
    body.on('error', () => (this.#ended = true))
  }

  // A connection of its own, destroyed on close: a shared pool would keep (or pre-open) sockets that hold the server's close().
  static async open(origin: string, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const connection = new Client(origin, { bodyTimeout: 0, pipelining: 0 })
    const response = await connection.request({ method: 'GET', path, headers: { accept: 'text/event-stream', ...headers } })
    return new SseClient(response.statusCode, response.headers, response.body, connection)
  }

  get ended(): boolean {
    return this.#ended
  }

  get events(): SseEvent[] {
    return this.messages.map((message) => JSON.parse(message.data) as SseEvent)
  }

  get lastId(): string | undefined {
    return this.messages.at(-1)?.id
  }

  #parse(chunk: string): void {
    this.#buffer += chunk
    let end: number
    while ((end = this.#buffer.indexOf('\n\n')) >= 0) {
      const block = this.#buffer.slice(0, end)
      this.#buffer = this.#buffer.slice(end + 2)
      const message: SseMessage = { id: undefined, event: undefined, data: '', receivedAt: performance.now() }
      let isMessage = false
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) {
          this.comments.push(line.slice(1).trim())
          continue
        }
        const colon = line.indexOf(':')
        const field = colon < 0 ? line : line.slice(0, colon)
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
        isMessage = true
        if (field === 'id') message.id = value
        else if (field === 'event') message.event = value
        else if (field === 'data') message.data = message.data ? `${message.data}\n${value}` : value
      }
      if (isMessage) this.messages.push(message)
    }
  }

  async waitForCount(count: number, timeoutMs = 10_000): Promise<SseEvent[]> {
    await waitFor(`${count} SSE messages (have ${this.messages.length})`, () => this.messages.length >= count, { timeoutMs, intervalMs: 2 })
    return this.events
  }

  pause(): void {
    this.body.pause()
  }

  resume(): void {
    this.body.resume()
  }

  close(): void {
    this.body.destroy()
    void this.connection.destroy().catch(() => undefined)
  }
}
