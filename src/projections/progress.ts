import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { CHANNEL } from '../db/channels.js'
import type { Sql, Tx } from '../db/connect.js'
import { SingleFlight } from '../single-flight.js'
import { notFound } from './definitions.js'

// How far the live generation is: its checkpoint, and the own checkpoint of each tenant it holds
// (docs/projection-failures.md), whose documents are only that far.
export interface LiveProgress {
  position: number
  held: Record<string, number>
}

// The live generation of a projection, its checkpoint and its held tenants' own checkpoints.
const readLiveProgress = async (sql: Sql | Tx, name: string): Promise<(LiveProgress & { generation: number }) | undefined> => {
  const [row] = await sql<(LiveProgress & { generation: number })[]>`
    select g.generation, g.position,
           coalesce((select jsonb_object_agg(h.tenant, h.position)
                       from projection_tenant_holds h
                      where h.projection = g.projection and h.generation = g.generation), '{}') as held
      from projections p
      join projection_generations g on g.projection = p.name and g.generation = p.live_generation
     where p.name = ${name}`
  return row
}

// In a batch of the projection, after heldTenants (which may let a tenant rejoin): the holds of `generation` as the
// batch will commit them, if it is the live generation. Nothing changes the live generation or a hold while a batch
// holds the projection lock shared (projection-lock.ts), so they are what a read right after the commit finds.
export const liveHoldsInBatch = async (tx: Tx, name: string, generation: number): Promise<Record<string, number> | undefined> => {
  const live = await readLiveProgress(tx, name)
  return live?.generation === generation ? live.held : undefined
}

export const positionFor = (progress: LiveProgress, tenant: string): number => Math.min(progress.position, progress.held[tenant] ?? progress.position)

// Read-your-writes for documents (SPEC "Documents", waitFor). A commit of a batch (by a local worker,
// or by another instance through NOTIFY) leads to one read of the live checkpoint per projection,
// however many requests wait on it; the waiters compare the position it finds for their tenant with their own.
export class ProjectionProgress {
  // each read's finding (undefined: no such projection; an Error: the read failed) with its number, counted as reads begin
  #positions = new EventEmitter<Record<string, [LiveProgress | undefined | Error, number]>>()
  #begun = 0
  readonly #reads = new Map<string, SingleFlight<[], void>>()
  // reads after a commit: apart from the readers' own, so a commit's read never queues behind a read begun before it
  readonly #commitReads = new Map<string, SingleFlight<[], void>>()
  #unlisten: (() => Promise<void>) | undefined
  // a NOTIFY's payload is "<name> <sender>": this process's own come back on its LISTEN after it already read
  readonly #token = randomUUID()

  constructor(private readonly sql: Sql) {
    this.#positions.setMaxListeners(0)
  }

  async start(): Promise<void> {
    const request = await this.sql.listen(CHANNEL.progress, (payload) => {
      const [name = '', sender] = payload.split(' ')
      if (sender !== this.#token) this.#read(name, this.#commitReads)
    })
    this.#unlisten = request.unlisten
  }

  async stop(): Promise<void> {
    await this.#unlisten?.().catch(() => undefined)
  }

  // Called by a local worker after its batch committed, with the live progress the batch committed when it read it in
  // its transaction (then no read is needed); other instances hear of it by NOTIFY.
  committed(name: string, progress?: LiveProgress): void {
    if (progress) this.#positions.emit(name, progress, ++this.#begun)
    else this.#read(name, this.#commitReads)
    void this.sql`select pg_notify(${CHANNEL.progress}, ${`${name} ${this.#token}`})`.catch(() => undefined)
  }

  async liveProgress(name: string): Promise<LiveProgress | undefined> {
    const live = await readLiveProgress(this.sql, name)
    return live && { position: live.position, held: live.held }
  }

  // One read at a time per projection and cause; a change during a read asks for one more, so some read always
  // starts after the latest change. Commits and new waiters each have their own: at a steady rate both come all
  // the time, and a commit's read waiting for one a waiter started earlier would add a round trip to every wait.
  #read(name: string, flights = this.#reads): void {
    let reads = flights.get(name)
    if (!reads) {
      reads = new SingleFlight(async () => {
        const begun = ++this.#begun
        const progress = await this.liveProgress(name).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))))
        this.#positions.emit(name, progress, begun)
      })
      flights.set(name, reads)
    }
    void reads.run()
  }

  // true once the live generation has processed `position` for `tenant`; false after timeoutMs. The first read begun
  // after the call also checks the projection: none is a 404, a failed read fails the wait (no query of its own)
  waitFor(name: string, tenant: string, position: number, timeoutMs: number): Promise<boolean> {
    const called = this.#begun
    let checked = false
    return new Promise((resolve, reject) => {
      const finish = (reached: boolean | Error): void => {
        clearTimeout(timer)
        this.#positions.off(name, onProgress)
        if (reached instanceof Error) reject(reached)
        else resolve(reached)
      }
      const onProgress = (progress: LiveProgress | undefined | Error, begun: number): void => {
        if (!checked && begun > called) {
          checked = true
          if (progress instanceof Error) return finish(progress)
          if (progress === undefined) return finish(notFound(name))
        }
        if (progress !== undefined && !(progress instanceof Error) && positionFor(progress, tenant) >= position) finish(true)
      }
      const timer = setTimeout(() => finish(false), timeoutMs)
      this.#positions.on(name, onProgress)
      this.#read(name)
    })
  }
}
