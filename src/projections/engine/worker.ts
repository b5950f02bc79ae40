import type { Sql } from '../../db/connect.js'
import type { LogWatcher } from '../../subscriptions/log-watcher.js'
import { sourceOf, type Projector } from './apply-event.js'
import { applyBatch, inBatchLocks, LostCheckpoint, type BatchOutcome, type BatchTarget, type ProjectionFailure } from './apply-batch.js'
import { SourceReader, type SourceBatch } from './source-events.js'
import { isTransient, messageOf } from './transient-errors.js'
import { advanceCheckpoint } from '../generations.js'
import { advanceHold, heldTenants, holdTenant, readHolds, type TenantHold } from '../tenant-holds.js'
import { liveHoldsInBatch, type LiveProgress } from '../progress.js'
import type { ProjectionEvent } from '../types.js'
import type { Keyring } from '../../events/keyring.js'

export interface WorkerDeps {
  sql: Sql
  logWatcher: LogWatcher
  upcast: (event: ProjectionEvent) => ProjectionEvent
  // opens personal data as events are read (source-events.ts)
  keyring?: Keyring | undefined
  batchSize: number
  // MAX_PAGE_BYTES: a batch stops early at this many bytes of events (always one)
  maxBatchBytes: number
  retryDelaysMs: number[]
  pollMs: number
  // a batch committed; with the live progress it committed when the worker's generation is live (progress.ts)
  committed: (worker: ProjectionWorker, progress?: LiveProgress) => void
  caughtUp: (worker: ProjectionWorker) => void
  // a tenant is held at the event it failed on (docs/projection-failures.md)
  held: (worker: ProjectionWorker, failure: ProjectionFailure) => Promise<void>
  log: { warn: (object: object, message: string) => void }
}

type Outcome = BatchOutcome | { kind: 'unavailable'; position: number } | { kind: 'narrow'; position: number; readTo: number }

// What a round applies: the projection's events after its checkpoint, or one resumed tenant's after its own.
type Path = { kind: 'main' } | { kind: 'tenant'; hold: TenantHold }

const keyOf = (path: Path): string => (path.kind === 'main' ? '' : path.hold.tenant)

// One loop per projection generation: read a batch after the checkpoint (gap-safe, filtered by the
// source), apply it, and commit the documents with the checkpoint in one transaction, so every event
// takes effect exactly once across crashes (SPEC "Projections"). A tenant whose event keeps failing is held
// there; the others go on, and a resumed tenant catches up on its own path (docs/projection-failures.md).
export class ProjectionWorker {
  #position: number
  #stopping = false
  #finished = false
  #done: Promise<void> = Promise.resolve()
  #wake: (() => void) | undefined
  // the head advanced since the loop last looked at it: an advance while a batch runs must not be slept through
  #advanced = false
  // the path that failed, tried again one event at a time until it passes or its tenant is held
  #retry: { key: string; failedAt: number; failures: number } | undefined
  // a batch the database refused as a whole: its events one at a time, to find the one it refuses
  #narrow: { key: string; until: number } | undefined
  #tenantTurn = true
  // the checkpoint an empty batch last ran at (to let a caught-up tenant rejoin), so it runs once there
  #emptyAt = -1
  readonly #target: BatchTarget
  readonly #reader: SourceReader

  constructor(
    private readonly deps: WorkerDeps,
    readonly name: string,
    readonly generation: number,
    readonly projector: Projector,
    position: number,
  ) {
    this.#position = position
    this.#reader = new SourceReader(deps.sql)
    this.#target = {
      projection: name,
      generation,
      projector,
      upcast: deps.upcast,
      documents: 'exclusive',
      onFailure: 'commit-before',
      held: (tx, from) => heldTenants(tx, name, generation, from),
      liveHolds: (tx) => liveHoldsInBatch(tx, name, generation),
      advance: (tx, from, to) => advanceCheckpoint(tx, name, generation, from, to),
    }
  }

  get position(): number {
    return this.#position
  }

  start(): void {
    this.#done = this.#run().catch((error) => this.deps.log.warn({ err: error, projection: this.name }, 'projection worker stopped'))
  }

  // The batch in hand commits first (SPEC "Management": a stop lets the current batch commit).
  async stop(): Promise<void> {
    this.#stopping = true
    this.#wake?.()
    await this.#done
  }

  // stopped, or yielded its checkpoint: the runner starts a fresh one if still wanted
  get finished(): boolean {
    return this.#finished
  }

  async #run(): Promise<void> {
    const onAdvance = (): void => {
      this.#advanced = true
      this.#wake?.()
    }
    this.deps.logWatcher.on('advance', onAdvance)
    try {
      while (!this.#stopping) {
        this.#advanced = false
        this.#prepare()
        const path = await this.#nextPath()
        if (!path) {
          this.deps.caughtUp(this)
          if (!this.#advanced) await this.#sleep(this.deps.pollMs)
          continue
        }
        const outcome = await this.#round(path)
        // the batch's transaction owned an xid: observations made meanwhile waited for it to end
        this.deps.logWatcher.ended()
        await this.#settle(path, outcome)
      }
    } catch (error) {
      if (!(error instanceof LostCheckpoint)) throw error
      this.deps.log.warn({ projection: this.name, generation: this.generation }, 'checkpoint moved elsewhere; worker yields')
    } finally {
      this.deps.logWatcher.off('advance', onAdvance)
      this.#finished = true
    }
  }

  // A resumed tenant's catch-up and the projection's batches take turns, so neither waits for the other to
  // end; a path that failed goes again until it passes or its tenant is held. Undefined: nothing to do.
  async #nextPath(): Promise<Path | undefined> {
    const resumed = (await readHolds(this.deps.sql, this.name, this.generation)).filter((hold) => hold.failure === null)
    const pending = this.#retry ?? this.#narrow
    if (pending?.key === '') return { kind: 'main' }
    if (pending) {
      const hold = resumed.find((candidate) => candidate.tenant === pending.key)
      if (hold) return { kind: 'tenant', hold }
      this.#retry = this.#narrow = undefined
    }
    const behind = resumed.find((hold) => hold.position < this.#position)
    const work = this.#position < this.deps.logWatcher.head
    if (behind && (this.#tenantTurn || !work)) {
      this.#tenantTurn = false
      return { kind: 'tenant', hold: behind }
    }
    this.#tenantTurn = true
    if (work) return { kind: 'main' }
    // a tenant that caught up rejoins in the projection's next batch: an empty one, once, if no event waits
    const rejoining = resumed.some((hold) => hold.position === this.#position) && this.#emptyAt !== this.#position
    if (!rejoining) return undefined
    this.#emptyAt = this.#position
    return { kind: 'main' }
  }

  // The projection's next batch, read while #nextPath reads the holds (one round trip less per batch at a steady
  // rate), when no retry or narrowing is under way; the reader hands it over only to the read it anticipated.
  #prepare(): void {
    if (this.#retry || this.#narrow) return
    this.#reader.prepare(sourceOf(this.projector), this.#position, this.deps.logWatcher.head, this.#readOptions(false))
  }

  #readOptions(single: boolean) {
    return { limit: single ? 1 : this.deps.batchSize, maxBytes: this.deps.maxBatchBytes, exact: this.projector.kind === 'declarative', keyring: this.deps.keyring }
  }

  async #round(path: Path): Promise<Outcome> {
    const key = keyOf(path)
    const single = this.#retry?.key === key || this.#narrow?.key === key
    const options = this.#readOptions(single)
    if (path.kind === 'main') {
      const batch = await this.#reader.read(sourceOf(this.projector), this.#position, this.deps.logWatcher.head, options)
      return this.#apply(this.#target, this.#position, batch)
    }
    const { tenant, position } = path.hold
    const batch = await this.#reader.read(sourceOf(this.projector), position, this.#position, { ...options, tenant })
    return this.#apply(this.#tenantTarget(tenant, this.#position), position, batch)
  }

  // A resumed tenant's events go to the same documents under the same locks; its own checkpoint moves.
  #tenantTarget(tenant: string, main: number): BatchTarget {
    const { name, generation } = this
    return { ...this.#target, held: undefined, liveHolds: undefined, advance: (tx, from, to) => advanceHold(tx, name, generation, tenant, from, to, main) }
  }

  async #settle(path: Path, outcome: Outcome): Promise<void> {
    const key = keyOf(path)
    const from = path.kind === 'main' ? this.#position : path.hold.position
    if (path.kind === 'main') this.#position = Math.max(this.#position, outcome.position)
    if (outcome.position > from) {
      const liveHolds = 'liveHolds' in outcome ? outcome.liveHolds : undefined
      this.deps.committed(this, liveHolds && { position: outcome.position, held: liveHolds })
    }
    if (this.#narrow?.key === key && outcome.position >= this.#narrow.until) this.#narrow = undefined
    if (outcome.kind === 'applied') {
      if (this.#retry?.key === key) this.#retry = undefined
    } else if (outcome.kind === 'unavailable') {
      await this.#sleep(this.deps.pollMs)
    } else if (outcome.kind === 'narrow') {
      this.#narrow = { key, until: outcome.readTo }
    } else {
      await this.#failed(path, outcome.failure)
    }
  }

  // retried with backoff, one event at a time; then its tenant is held there and the rest goes on
  async #failed(path: Path, failure: ProjectionFailure): Promise<void> {
    const key = keyOf(path)
    const failures = this.#retry?.key === key && this.#retry.failedAt === failure.position ? this.#retry.failures + 1 : 1
    if (failures <= this.deps.retryDelaysMs.length) {
      this.#retry = { key, failedAt: failure.position, failures }
      await this.#sleep(this.deps.retryDelaysMs[failures - 1]!)
      return
    }
    this.#retry = undefined
    const { name, generation } = this
    if (!(await inBatchLocks(this.deps.sql, this.#target, (tx) => holdTenant(tx, name, generation, failure.tenant, failure)))) throw new LostCheckpoint()
    await this.deps.held(this, failure)
  }

  async #apply(target: BatchTarget, from: number, batch: SourceBatch): Promise<Outcome> {
    try {
      return await applyBatch(this.deps.sql, target, { events: batch.events, from, readTo: batch.readTo })
    } catch (error) {
      if (error instanceof LostCheckpoint) throw error
      if (isTransient(error)) return { kind: 'unavailable', position: from }
      // the database refused the batch (a document it cannot store): nothing of it committed
      const [first, second] = batch.events
      if (!first) throw error
      if (second) return { kind: 'narrow', position: from, readTo: batch.readTo }
      const failure = { tenant: first.tenant, position: first.globalPosition, eventId: first.eventId, message: messageOf(error) }
      const before = first.globalPosition - 1
      if (before === from) return { kind: 'failed', position: from, failure }
      // A tenant is held only where its checkpoint stands right before the event it failed on (holdTenant), and the
      // refused batch moved nothing: the checkpoint moves up to that event first, by an empty batch. Nothing the
      // source takes lies between: the event is the first the batch read after `from`.
      const moved = await this.#apply(target, from, { events: [], readTo: before })
      return moved.kind === 'applied' ? { kind: 'failed', position: moved.position, failure } : moved
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopping) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      const self = this
      function done(): void {
        clearTimeout(timer)
        if (self.#wake === done) self.#wake = undefined
        resolve()
      }
      this.#wake = done
    })
  }
}
