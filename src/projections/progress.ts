import { EventEmitter } from 'node:events'
import { CHANNEL } from '../db/channels.js'
import type { Sql } from '../db/connect.js'
import { SingleFlight } from '../single-flight.js'

// Read-your-writes for documents (SPEC "Documents", waitFor). A commit of a batch (by a local worker,
// or by another instance through NOTIFY) leads to one read of the live checkpoint per projection,
// however many requests wait on it; the waiters compare the position it finds with their own.
export class ProjectionProgress {
  #positions = new EventEmitter<Record<string, [number]>>()
  readonly #reads = new Map<string, SingleFlight<[], void>>()
  #unlisten: (() => Promise<void>) | undefined

  constructor(private readonly sql: Sql) {
    this.#positions.setMaxListeners(0)
  }

  async start(): Promise<void> {
    const request = await this.sql.listen(CHANNEL.progress, (name) => this.#read(name))
    this.#unlisten = request.unlisten
  }

  async stop(): Promise<void> {
    await this.#unlisten?.().catch(() => undefined)
  }

  // Called by a local worker after its batch committed; other instances hear of it by NOTIFY.
  committed(name: string): void {
    this.#read(name)
    void this.sql`select pg_notify(${CHANNEL.progress}, ${name})`.catch(() => undefined)
  }

  async livePosition(name: string): Promise<number | undefined> {
    const [row] = await this.sql<{ position: number }[]>`
      select g.position
        from projections p
        join projection_generations g on g.projection = p.name and g.generation = p.live_generation
       where p.name = ${name}`
    return row?.position
  }

  // One read at a time per projection; a change during a read asks for one more, so some read always
  // starts after the latest change.
  #read(name: string): void {
    let reads = this.#reads.get(name)
    if (!reads) {
      reads = new SingleFlight(async () => {
        const position = await this.livePosition(name).catch(() => undefined)
        if (position !== undefined) this.#positions.emit(name, position)
      })
      this.#reads.set(name, reads)
    }
    void reads.run()
  }

  // true once the live generation has processed `position`; false after timeoutMs
  waitFor(name: string, position: number, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const finish = (reached: boolean): void => {
        clearTimeout(timer)
        this.#positions.off(name, onPosition)
        resolve(reached)
      }
      const onPosition = (current: number): void => {
        if (current >= position) finish(true)
      }
      const timer = setTimeout(() => finish(false), timeoutMs)
      this.#positions.on(name, onPosition)
      this.#read(name)
    })
  }
}
