import { EventEmitter } from 'node:events'
import type { Sql } from '../db/connect.js'

export const PROGRESS_CHANNEL = 'annalist_projection_progress'

// Read-your-writes for documents (SPEC "Documents", waitFor): a waiter sleeps until a worker of this
// or another instance commits a batch of that projection, then looks at the live checkpoint again.
export class ProjectionProgress {
  #events = new EventEmitter<Record<string, []>>()
  #unlisten: (() => Promise<void>) | undefined

  constructor(private readonly sql: Sql) {
    this.#events.setMaxListeners(0)
  }

  async start(): Promise<void> {
    const request = await this.sql.listen(PROGRESS_CHANNEL, (name) => this.#events.emit(name))
    this.#unlisten = request.unlisten
  }

  async stop(): Promise<void> {
    await this.#unlisten?.().catch(() => undefined)
  }

  // Called by a local worker after its batch committed; other instances hear of it by NOTIFY.
  committed(name: string): void {
    this.#events.emit(name)
    void this.sql`select pg_notify(${PROGRESS_CHANNEL}, ${name})`.catch(() => undefined)
  }

  async livePosition(name: string): Promise<number | undefined> {
    const [row] = await this.sql<{ position: number }[]>`
      select g.position
        from projections p
        join projection_generations g on g.projection = p.name and g.generation = p.live_generation
       where p.name = ${name}`
    return row?.position
  }

  // true once the live generation has processed `position`; false after timeoutMs
  async waitFor(name: string, position: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      let stopWaiting = (): void => {}
      const wake = new Promise<void>((resolve) => {
        const onCommit = (): void => {
          clearTimeout(timer)
          resolve()
        }
        // a timed-out waiter leaves no listener behind
        const timer = setTimeout(() => {
          this.#events.off(name, onCommit)
          resolve()
        }, Math.max(0, deadline - Date.now()))
        this.#events.once(name, onCommit)
        stopWaiting = () => {
          clearTimeout(timer)
          this.#events.off(name, onCommit)
        }
      })
      const current = await this.livePosition(name)
      if (current !== undefined && current >= position) {
        stopWaiting()
        return true
      }
      if (Date.now() >= deadline) {
        stopWaiting()
        return false
      }
      await wake
    }
  }
}
