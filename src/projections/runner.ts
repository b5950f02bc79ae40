import { LOCK_CLASS } from '../db/advisory-locks.js'
import { CHANNEL } from '../db/channels.js'
import type { Sql } from '../db/connect.js'
import { SingleFlight } from '../single-flight.js'
import { DEFAULT_MAX_PAGE_BYTES } from '../events/event-page.js'
import type { LogWatcher } from '../subscriptions/log-watcher.js'
import { projectorFor, type Projector } from './engine/apply-event.js'
import { BackfillJob, type BackfillJobDeps } from './backfills/backfill-job.js'
import { activeBackfills } from './backfills/backfill-runs.js'
import type { ProjectionProgress } from './progress.js'
import { swapInBuilt } from './backfills/swap-in.js'
import { listGenerations, listProjections, registerCode, type GenerationRow, type ProjectionRow } from './definitions.js'
import { recordSystemEvent, type SystemEventType } from './system-events.js'
import type { CodeProjection, ProjectionEvent } from './types.js'
import type { ProjectionFailure } from './engine/apply-batch.js'
import { ProjectionWorker, type WorkerDeps } from './engine/worker.js'
import { wantedWork } from './wanted-work.js'
import type { Keyring } from '../events/keyring.js'


export interface RunnerOptions {
  sql: Sql
  logWatcher: LogWatcher
  progress: ProjectionProgress
  codeProjections: CodeProjection[]
  upcast?: (event: ProjectionEvent) => ProjectionEvent
  // opens personal data as workers and backfills read events
  keyring?: Keyring
  // the gap-safe head, freshly observed: where a backfill's selection ends
  head: () => Promise<number>
  // a projection snapshot of the live documents, taken before a non-atomic backfill changes them
  snapshot: (projection: string, backfillId: string) => Promise<string>
  log: { info: (object: object, message: string) => void; warn: (object: object, message: string) => void }
  batchSize?: number
  // MAX_PAGE_BYTES: worker and backfill batches stop early at this many bytes of events
  maxBatchBytes?: number
  retryDelaysMs?: number[]
  reconcileMs?: number
  // after each batch a worker committed (automatic projection snapshots)
  committed?: (worker: ProjectionWorker) => void
}

// A backfill's batch per partition when its request names none. A backfill shares the process with the requests it must
// not slow down: an atomic rebuild of 1,000,000 events with batches of 1,000 took 16–20 s and held reads' p99 at 4.5–5×
// their idle p99; of 400, 16–23 s and 2.7–3.3× (over 3× in one run of three); of 250, 19–28 s and 2.4–2.9× (four runs).
// docs/performance.md "Rebuilds: the batch a request does not name".
export const BACKFILL_BATCH_SIZE = 250

type Reserved = Awaited<ReturnType<Sql['reserve']>>

// Runs the projections this instance holds. Each projection runs in exactly one instance at a time:
// its workers start only under a session advisory lock held on one reserved connection, so the lock
// goes the moment this process or its connection dies, and another instance's next round (every
// reconcileMs) takes over (SPEC: within 10 s). The checkpoint compare-and-set in every batch keeps a
// worker that lost its lock from committing over its successor.
export class ProjectionRunner {
  readonly #workers = new Map<string, ProjectionWorker>()
  readonly #jobs = new Map<string, BackfillJob>()
  readonly #owned = new Set<string>()
  readonly #building = new Set<string>()
  readonly #code: Map<string, CodeProjection>
  readonly #deps: WorkerDeps
  readonly #jobDeps: BackfillJobDeps
  #locks: Reserved | undefined
  #lockPid: number | undefined
  readonly #rounds = new SingleFlight(() => this.#round())
  #timer: NodeJS.Timeout | undefined
  #unlisten: (() => Promise<void>) | undefined
  #stopped = false

  constructor(private readonly options: RunnerOptions) {
    this.#code = new Map(options.codeProjections.map((module) => [module.name, module]))
    this.#deps = {
      sql: options.sql,
      logWatcher: options.logWatcher,
      upcast: options.upcast ?? ((event) => event),
      keyring: options.keyring,
      batchSize: options.batchSize ?? 1000,
      maxBatchBytes: options.maxBatchBytes ?? DEFAULT_MAX_PAGE_BYTES,
      retryDelaysMs: options.retryDelaysMs ?? [200, 800],
      pollMs: 1000,
      log: options.log,
      committed: (worker, progress) => {
        options.progress.committed(worker.name, progress)
        options.committed?.(worker)
      },
      // a swap that fails (the database away) is tried again when the worker next finds itself caught up
      caughtUp: (worker) =>
        void this.#caughtUp(worker).catch((error) => options.log.warn({ err: error, projection: worker.name }, 'generation swap failed')),
      held: (worker, failure) => this.#held(worker, failure),
    }
    this.#jobDeps = {
      sql: options.sql,
      upcast: this.#deps.upcast,
      keyring: options.keyring,
      head: options.head,
      snapshot: options.snapshot,
      record: (name, type, data, correlationId) => this.record(name, type, data, correlationId),
      settled: () => void this.changed(),
      log: options.log,
    }
  }

  get codeProjections(): Map<string, CodeProjection> {
    return this.#code
  }

  // Code projections from PROJECTIONS_DIR become rows like declarative ones, so status and
  // management work the same for both kinds.
  async registerCode(): Promise<void> {
    for (const name of this.#code.keys()) await registerCode(this.options.sql, name)
  }

  async start(): Promise<void> {
    const request = await this.options.sql.listen(CHANNEL.projections, () => void this.reconcile())
    this.#unlisten = request.unlisten
    await this.reconcile()
    this.#timer = setInterval(() => void this.reconcile(), this.options.reconcileMs ?? 2000)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#timer)
    await this.#unlisten?.().catch(() => undefined)
    await this.#rounds.settled()
    await Promise.all([...this.#workers.values(), ...this.#jobs.values()].map((running) => running.stop()))
    this.#workers.clear()
    this.#jobs.clear()
    // the connection goes back to the pool, which may outlive this runner: its session locks must not go with it
    // (asked through the pool first: a dropped reserved connection must never be written to, see #checkLocks)
    await this.#checkLocks().catch(() => undefined)
    const locks = this.#locks
    this.#locks = undefined
    if (locks) await locks`select pg_advisory_unlock_all()`.catch(() => undefined)
    locks?.release()
  }

  // Tell every instance (this one included) that definitions or statuses changed.
  async changed(): Promise<void> {
    await this.options.sql`select pg_notify(${CHANNEL.projections}, '')`
    await this.reconcile()
  }

  worker(name: string, generation: number): ProjectionWorker | undefined {
    return this.#workers.get(`${name}:${generation}`)
  }

  // Stops this instance's workers of one projection (their batch commits first) ahead of a change to
  // its checkpoint; a worker elsewhere finds its checkpoint moved and yields.
  async stopLocal(name: string): Promise<void> {
    await this.#rounds.settled()
    for (const [key, worker] of this.#workers) {
      if (worker.name !== name) continue
      this.#workers.delete(key)
      await worker.stop()
    }
  }

  // A backfill job of this instance stops after its partitions' current commits.
  async stopJob(id: string): Promise<void> {
    const job = this.#jobs.get(id)
    this.#jobs.delete(id)
    await job?.stop()
  }

  async record(name: string, type: SystemEventType, data: Record<string, unknown> = {}, correlationId?: string | null): Promise<void> {
    await recordSystemEvent(this.options.sql, name, type, data, correlationId)
  }

  // Rounds run one at a time; a round asked for while one runs shares the next.
  reconcile(): Promise<void> {
    return this.#rounds.run()
  }

  async #round(): Promise<void> {
    if (this.#stopped) return
    await this.#reconcileOnce().catch((error) => this.options.log.warn({ err: error }, 'projection round failed'))
  }

  async #reconcileOnce(): Promise<void> {
    const [projections, generations, backfills] = await Promise.all([
      listProjections(this.options.sql),
      listGenerations(this.options.sql),
      activeBackfills(this.options.sql),
    ])
    const { wanted, wantedJobs } = wantedWork(projections, generations, backfills, this.#code)
    for (const [key, worker] of this.#workers) {
      if (!wanted.has(key) || worker.finished) {
        this.#workers.delete(key)
        await worker.stop()
      }
    }
    for (const [id, job] of this.#jobs) if (!wantedJobs.has(id) || job.finished) await this.stopJob(id)
    this.#building.clear()
    for (const [key, { generation }] of wanted) if (generation.state === 'building') this.#building.add(key)
    const names = new Set([
      ...[...wanted.values()].map(({ projection }) => projection.name),
      ...[...wantedJobs.values()].map(({ projection }) => projection.name),
    ])
    await this.#checkLocks()
    for (const name of this.#owned) if (!names.has(name)) await this.#unlock(name)
    for (const [key, { projection, generation }] of wanted) {
      if (this.#workers.has(key) || !(await this.#lock(projection.name))) continue
      const worker = new ProjectionWorker(this.#deps, projection.name, generation.generation, this.#projector(projection, generation), generation.position)
      this.#workers.set(key, worker)
      worker.start()
    }
    for (const [id, { projection, generation }] of wantedJobs) {
      if (this.#jobs.has(id) || !(await this.#lock(projection.name))) continue
      const job = new BackfillJob(this.#jobDeps, id, projection.name, this.#projector(projection, generation), BACKFILL_BATCH_SIZE, this.#deps.maxBatchBytes)
      this.#jobs.set(id, job)
      job.start()
    }
  }

  // wanted only when it exists: a code projection's module is loaded here, a declarative one has its definition
  #projector(projection: ProjectionRow, generation: GenerationRow): Projector {
    return projectorFor(projection, generation.definition, this.#code)!
  }

  async #lock(name: string): Promise<boolean> {
    if (this.#owned.has(name)) return true
    try {
      if (!this.#locks) {
        const locks = await this.options.sql.reserve()
        const [me] = await locks<{ pid: number }[]>`select pg_backend_pid() as pid`
        this.#locks = locks
        this.#lockPid = me?.pid
      }
      const [row] = await this.#locks<{ locked: boolean }[]>`select pg_try_advisory_lock(${LOCK_CLASS.projectionOwner}, hashtext(${name})) as locked`
      if (row?.locked) this.#owned.add(name)
      return row?.locked === true
    } catch (error) {
      await this.#lost(error)
      return false
    }
  }

  // The database may drop the lock connection (a terminated backend, a network blip), and its locks go
  // with it: another instance may take them. Each round asks through the pool whether the lock backend
  // still holds what this instance owns, and never writes to a dropped reserved connection, which
  // crashes the process in postgres.js 3.4.9 (porsager/postgres#1208).
  async #checkLocks(): Promise<void> {
    if (!this.#locks) return
    const [row] = await this.options.sql<{ alive: boolean; held: number }[]>`
      select exists (select from pg_stat_activity where pid = ${this.#lockPid ?? 0}) as alive,
             (select count(*)::int from pg_locks where pid = ${this.#lockPid ?? 0} and locktype = 'advisory' and classid = ${LOCK_CLASS.projectionOwner} and granted) as held`
    if (!row?.alive || row.held < this.#owned.size) await this.#lost(new Error(`lock backend ${this.#lockPid} gone or holding ${row?.held} of ${this.#owned.size} locks`))
  }

  // the lock connection is gone and its locks with it: stop everything it guarded
  async #lost(error: unknown): Promise<void> {
    this.options.log.warn({ err: error }, 'projection lock connection lost')
    this.#locks = undefined
    this.#lockPid = undefined
    this.#owned.clear()
    await Promise.all([...this.#workers.values(), ...this.#jobs.values()].map((running) => running.stop()))
    this.#workers.clear()
    this.#jobs.clear()
  }

  async #unlock(name: string): Promise<void> {
    this.#owned.delete(name)
    const locks = this.#locks
    if (locks) await locks`select pg_advisory_unlock(${LOCK_CLASS.projectionOwner}, hashtext(${name}))`.catch(() => undefined)
  }

  // a building generation that reached the live head is swapped in (backfills/swap-in.ts), and says so
  async #caughtUp(worker: ProjectionWorker): Promise<void> {
    if (!this.#building.has(`${worker.name}:${worker.generation}`)) return
    const swapped = await swapInBuilt(this.options.sql, worker.name, worker.generation, () => worker.position >= this.options.logWatcher.head)
    if (!swapped) return
    this.options.log.info({ projection: worker.name, generation: worker.generation }, 'projection generation swapped in')
    this.options.progress.committed(worker.name)
    const { backfill } = swapped
    const { generation, position } = worker
    await this.record(worker.name, 'ProjectionSwapped', { generation, previousGeneration: swapped.previous, position, ...(backfill ? { backfillId: backfill.id } : {}) }, backfill?.correlationId)
    if (backfill) {
      await this.record(worker.name, 'ProjectionBackfillCompleted', { backfillId: backfill.id, processed: backfill.processed, total: backfill.total, position }, backfill.correlationId)
    }
    await this.changed()
  }

  // the worker goes on with the other tenants; status and metrics read the hold (docs/projection-failures.md)
  async #held(worker: ProjectionWorker, failure: ProjectionFailure): Promise<void> {
    this.options.log.warn({ projection: worker.name, generation: worker.generation, ...failure }, 'projection failed for a tenant; its events are held')
    await this.record(worker.name, 'ProjectionFailed', { ...failure, generation: worker.generation, error: failure.message })
  }
}
