import type { Sql } from '../../db/connect.js'
import type { LogWatcher } from '../../subscriptions/log-watcher.js'
import { sourceOf, type Projector } from './apply-event.js'
import { applyBatch, LostCheckpoint, type BatchOutcome, type BatchTarget, type ProjectionFailure } from './apply-batch.js'
import { readSourceEvents, type SourceBatch } from './source-events.js'
import { isTransient, messageOf } from './transient-errors.js'
import { advanceCheckpoint } from '../generations.js'
import type { ProjectionEvent } from '../types.js'

export interface WorkerDeps {
  sql: Sql
  logWatcher: LogWatcher
  upcast: (event: ProjectionEvent) => ProjectionEvent
  batchSize: number
  // MAX_PAGE_BYTES: a batch stops early at this many bytes of events (always one)
  maxBatchBytes: number
  retryDelaysMs: number[]
  pollMs: number
  committed: (worker: ProjectionWorker) => void
  caughtUp: (worker: ProjectionWorker) => void
  failed: (worker: ProjectionWorker, failure: ProjectionFailure) => Promise<void>
  log: { warn: (object: object, message: string) => void }
}

type Outcome = BatchOutcome | { kind: 'unavailable'; position: number }

// One loop per projection generation: read a batch after the checkpoint (gap-safe, filtered by the
// source), apply it, and commit the documents with the checkpoint in one transaction, so every event
// takes effect exactly once across crashes (SPEC "Projections").
export class ProjectionWorker {
  #position: number
  #stopping = false
  #finished = false
  #done: Promise<void> = Promise.resolve()
  #wake: (() => void) | undefined
  readonly #target: BatchTarget

  constructor(
    private readonly deps: WorkerDeps,
    readonly name: string,
    readonly generation: number,
    readonly projector: Projector,
    position: number,
  ) {
    this.#position = position
    this.#target = {
      projection: name,
      generation,
      projector,
      upcast: deps.upcast,
      documents: 'exclusive',
      onFailure: 'commit-before',
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

  // stopped, failed, or yielded its checkpoint: the runner starts a fresh one if still wanted
  get finished(): boolean {
    return this.#finished
  }

  async #run(): Promise<void> {
    const onAdvance = (): void => this.#wake?.()
    this.deps.logWatcher.on('advance', onAdvance)
    let failures = 0
    let failedAt = -1
    try {
      while (!this.#stopping) {
        const head = this.deps.logWatcher.head
        if (this.#position >= head) {
          this.deps.caughtUp(this)
          await this.#sleep(this.deps.pollMs)
          continue
        }
        // after a failure, one event at a time, so the poison event is the only one held back
        const limit = failures > 0 ? 1 : this.deps.batchSize
        const batch = await readSourceEvents(this.deps.sql, sourceOf(this.projector), this.#position, head, { limit, maxBytes: this.deps.maxBatchBytes, exact: this.projector.kind === 'declarative' })
        const outcome = await this.#apply(batch)
        const moved = outcome.position > this.#position
        this.#position = outcome.position
        if (moved) this.deps.committed(this)
        if (outcome.kind === 'applied') {
          failures = 0
          continue
        }
        if (outcome.kind === 'unavailable') {
          await this.#sleep(this.deps.pollMs)
          continue
        }
        failures = outcome.failure.position === failedAt ? failures + 1 : 1
        failedAt = outcome.failure.position
        if (failures >= this.deps.retryDelaysMs.length + 1) {
          await this.deps.failed(this, outcome.failure)
          return
        }
        await this.#sleep(this.deps.retryDelaysMs[failures - 1]!)
      }
    } catch (error) {
      if (!(error instanceof LostCheckpoint)) throw error
      this.deps.log.warn({ projection: this.name, generation: this.generation }, 'checkpoint moved elsewhere; worker yields')
    } finally {
      this.deps.logWatcher.off('advance', onAdvance)
      this.#finished = true
    }
  }

  async #apply(batch: SourceBatch): Promise<Outcome> {
    const from = this.#position
    try {
      return await applyBatch(this.deps.sql, this.#target, { events: batch.events, from, readTo: batch.readTo })
    } catch (error) {
      if (error instanceof LostCheckpoint) throw error
      if (isTransient(error)) return { kind: 'unavailable', position: from }
      // the database refused the batch (a document it cannot store): nothing of it committed
      const first = batch.events[0]
      if (!first) throw error
      return { kind: 'failed', position: from, failure: { position: first.globalPosition, eventId: first.eventId, message: messageOf(error) } }
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
