import type { Sql } from '../db/connect.js'
import { createBackfill, finishBackfill, ACTIVE, type BackfillRow } from '../projections/backfills/backfill-runs.js'
import { recordCancelled } from '../projections/backfills/backfill-commands.js'
import type { BackfillRequest } from '../projections/backfills/backfill-request-schema.js'
import { changeProjection } from '../projections/projection-lock.js'
import type { ProjectionRunner } from '../projections/runner.js'

// how often an instance looks for rebuilds a forget recorded but did not start (it was cut short)
const RESUME_EVERY_MS = 10_000

// the request every forget rebuild is made with; it names no subject (system events are readable by admins)
const REBUILD: BackfillRequest = { criteria: 'full-rebuild', atomic: true, requestedBy: 'subject-forgotten' }
const SUPERSEDED = 'superseded by the rebuild after a subject was forgotten'

interface Started {
  backfillId: string
  cancelled: BackfillRow | undefined
}

// Step two of a forget (forget-subject.ts): each recorded projection gets an atomic full rebuild, which replaces every
// document with ones built from the events as they read now (the forgotten personal data missing); the swap then drops
// the generation it replaces (swap-in.ts). A run already in progress is cancelled for it. Projection snapshots of the
// projection go in the same transaction: every one of them was taken before the forget.
export class SubjectRebuilds {
  #timer: NodeJS.Timeout | undefined
  #running: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly sql: Sql,
    private readonly runner: ProjectionRunner,
    private readonly log: { warn: (object: object, message: string) => void },
  ) {}

  // Also every RESUME_EVERY_MS: a forget whose process died after its commit is finished by any instance.
  start(): void {
    const resume = () => {
      this.#running = this.#running.then(() => this.resume()).catch((error) => this.log.warn({ err: error }, 'forget rebuilds could not be started'))
    }
    resume()
    this.#timer = setInterval(resume, RESUME_EVERY_MS)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await this.#running
  }

  async resume(): Promise<void> {
    const rows = await this.sql<{ projection: string }[]>`select distinct projection from subject_rebuilds where backfill is null order by projection`
    for (const { projection } of rows) await this.#startRebuild(projection)
  }

  // The rebuilds of one subject's forget, started where they are not yet: [{projection, backfillId}].
  async startFor(tenant: string, subject: string): Promise<{ projection: string; backfillId: string }[]> {
    const waiting = await this.sql<{ projection: string }[]>`
      select projection from subject_rebuilds where tenant = ${tenant} and subject = ${subject} and backfill is null order by projection`
    // the key is already destroyed: a rebuild that cannot start now is started by resume(), and shows as pending
    for (const { projection } of waiting) {
      await this.#startRebuild(projection).catch((error) => this.log.warn({ err: error, projection }, 'a forget rebuild could not be started; it will be tried again'))
    }
    return this.sql<{ projection: string; backfillId: string }[]>`
      select projection, backfill as "backfillId" from subject_rebuilds
       where tenant = ${tenant} and subject = ${subject} and backfill is not null
       order by projection`
  }

  async #startRebuild(projection: string): Promise<void> {
    const started = await changeProjection(this.sql, projection, async (tx): Promise<Started | undefined> => {
      const waiting = await tx`select from subject_rebuilds where projection = ${projection} and backfill is null for update`
      // another call (or instance) started it meanwhile, or the projection was deleted
      if (waiting.length === 0) return undefined
      const [active] = await tx<{ id: string }[]>`select id from projection_backfills where projection = ${projection} and status in ${tx(ACTIVE)}`
      const cancelled = active ? await finishBackfill(tx, active.id, 'cancelled', SUPERSEDED) : undefined
      const backfillId = await createBackfill(tx, { projection, request: REBUILD, partitions: 1 })
      await tx`
        update subject_rebuilds
           set backfill = ${backfillId}
         where projection = ${projection}
           and (backfill is null or backfill = ${cancelled?.id ?? null})`
      await tx`delete from projection_snapshots where projection = ${projection}`
      return { backfillId, cancelled }
    })
    if (!started) return
    if (started.cancelled) {
      await this.runner.stopJob(started.cancelled.id)
      await recordCancelled(this.runner, started.cancelled, SUPERSEDED)
    }
    await this.runner.record(projection, 'ProjectionBackfillRequested', { backfillId: started.backfillId, request: REBUILD })
    await this.runner.changed()
  }
}
