import type { ServerProcess } from './server-process.js'

export const TICK_BUCKETS = ['b0', 'b1', 'b2', 'b3']
const MAX_STEPS_PER_CLIENT = 100_000

export interface TickAck {
  at: number
  lastPosition: number
  events: number
}

// Concurrent appenders of `Tick` events (1–3 per request, each naming one of TICK_BUCKETS) to `tick-*`
// streams, spread over the servers still in `servers`. A request to a server that was retired (about
// to be killed) may fail or go unanswered: the client moves on to a live one, or ends when none is left.
// Whether such a request committed is for the database to say, so checks count stored events, not acks.
export class TickLoad {
  readonly acks: TickAck[] = []
  readonly unexpected: string[] = []
  servers: ServerProcess[]
  inFlight = 0
  // requests to a retired server that failed or answered other than 201
  lost = 0
  #stopping = false
  #clients: Promise<void>[] = []
  readonly #retired = new Set<ServerProcess>()

  constructor(servers: ServerProcess[], readonly tag: string) {
    this.servers = [...servers]
  }

  get ackedEvents(): number {
    return this.acks.reduce((sum, ack) => sum + ack.events, 0)
  }

  // the highest lastPosition acknowledged (since `since`, a Date.now() value)
  lastPosition(since = 0): number {
    return this.acks.reduce((max, ack) => (ack.at >= since ? Math.max(max, ack.lastPosition) : max), 0)
  }

  start(clients: number): this {
    for (let client = 0; client < clients; client++) this.#clients.push(this.#run(client))
    return this
  }

  // Take a server out of the rotation before killing it: its failures are then expected.
  retire(server: ServerProcess): void {
    this.#retired.add(server)
    this.servers = this.servers.filter((candidate) => candidate !== server)
  }

  // Clients finish their request in hand, then end.
  async stop(): Promise<void> {
    this.#stopping = true
    await Promise.all(this.#clients)
  }

  async #run(client: number): Promise<void> {
    for (let step = 0; step < MAX_STEPS_PER_CLIENT && !this.#stopping; step++) {
      const server = this.servers[client % Math.max(this.servers.length, 1)]
      if (!server) return
      const count = 1 + ((client + step) % 3)
      const events = Array.from({ length: count }, (_, index) => ({
        type: 'Tick',
        data: { bucket: TICK_BUCKETS[(client * 7 + step * 3 + index) % TICK_BUCKETS.length], client, step, tag: this.tag },
      }))
      this.inFlight++
      try {
        const response = await server.request('POST', `/streams/tick-${client}-${step % 5}/events`, { body: { events } })
        if (response.status === 201) this.acks.push({ at: Date.now(), lastPosition: response.body.lastPosition, events: count })
        else if (this.#retired.has(server)) this.lost++
        else {
          this.unexpected.push(`client ${client} got ${response.status} ${response.text}`)
          return
        }
      } catch (error) {
        if (this.#retired.has(server)) this.lost++
        else {
          this.unexpected.push(`client ${client}: ${String(error)}`)
          return
        }
      } finally {
        this.inFlight--
      }
    }
  }
}
