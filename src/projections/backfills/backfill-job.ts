import type { Sql, Tx } from '../../db/connect.js'
import { eventTextColumns } from '../../events/event-columns.js'
import { eventPage, type PageColumns } from '../../events/event-page.js'
import type { StoredEventText } from '../../events/read-log-text.js'
import { sourceOf, type Projector } from '../engine/apply-event.js'
import { applyBatch, BatchFailure } from '../engine/apply-batch.js'
import type { BackfillRequest } from './backfill-request-schema.js'
import { finishBackfill, getBackfill, type BackfillRow } from './backfill-runs.js'
import { isTransient, messageOf } from '../engine/transient-errors.js'
import { setCheckpoint } from '../generations.js'
import { changeProjection } from '../projection-lock.js'
import { parseEvent } from '../engine/source-events.js'
import { Turns } from '../engine/take-turns.js'
import { selectEvents, selectionConditions } from './backfill-selection.js'
import type { SystemEventType } from '../system-events.js'
import type { ProjectionEvent } from '../types.js'
import type { Keyring } from '../../events/keyring.js'

// SPEC: ProjectionBackfillProgress at most every 5 s
const PROGRESS_EVERY_MS = 5000
const RETRY_MS = 500

export interface BackfillJobDeps {
  sql: Sql
  upcast: (event: ProjectionEvent) => ProjectionEvent
  // opens personal data as events are read
  keyring?: Keyring | undefined
  // the gap-safe head now (a fresh observation)
  head: () => Promise<number>
  snapshot: (projection: string, backfillId: string) => Promise<string>
  record: (projection: string, type: SystemEventType, data: Record<string, unknown>, correlationId?: string | null) => Promise<void>
  // the run reached a state the runner acts on (swapping: start the generation's worker; or ended)
  settled: (job: BackfillJob) => void
  log: { warn: (object: object, message: string) => void; info: (object: object, message: string) => void }
}

class Stopped extends Error {}

interface Batch {
  events: ProjectionEvent[]
  // the partition of each event (by index)
  partitions: number[]
  // the position this batch has looked through
  readTo: number
}

// Runs one backfill in the instance that holds its projection. The selected events are read once per
// batch in position order and split by stream into partitions; each partition applies its share in its
// own transaction together with its own checkpoint, so a run killed anywhere resumes exactly where each
// partition was, and no event is applied twice (documents also carry the position of the last event
// they saw, which guards against the live worker too).
export class BackfillJob {
  #stopping = false
  #finished = false
  #done: Promise<void> = Promise.resolve()
  #lastProgress = Date.now()

  constructor(
    private readonly deps: BackfillJobDeps,
    readonly id: string,
    readonly projection: string,
    readonly projector: Projector,
    private readonly batchSize: number,
    // MAX_PAGE_BYTES: a read stops early at this many bytes of events (always one)
    private readonly maxBatchBytes: number,
  ) {}

  start(): void {
    this.#done = this.#run()
      .catch((error) => {
        if (!(error instanceof Stopped)) this.deps.log.warn({ err: error, backfill: this.id }, 'backfill job stopped')
      })
      .finally(() => (this.#finished = true))
  }

  // ended for whatever reason: the runner starts a fresh one if the run is still wanted here
  get finished(): boolean {
    return this.#finished
  }

  async stop(): Promise<void> {
    this.#stopping = true
    await this.#done
  }

  async #run(): Promise<void> {
    let row = await this.#begin()
    if (row.status !== 'running') return
    const positions = await this.#positions()
    let cursor = Math.min(...positions.values())
    const to = row.toPosition!
    // each partition's transaction gets about batchSize events
    const readSize = (row.request.batchSize ?? this.batchSize) * row.partitions
    // the next batch is read while this one is applied
    let next: Promise<Batch> | undefined
    while (!this.#stopping && cursor < to) {
      let batch: Batch
      try {
        batch = await (next ?? this.#read(row, cursor, to, readSize))
        next = batch.readTo < to ? this.#read(row, batch.readTo, to, readSize) : undefined
        next?.catch(() => undefined)
        // every partition settles before the next step, so a stop never leaves one running behind it
        const outcomes = await Promise.allSettled(
          [...positions.keys()].map(async (partition) => {
            const from = positions.get(partition)!
            const events = batch.events.filter((event, index) => batch.partitions[index] === partition && event.globalPosition > from)
            if (events.length === 0) return
            await this.#applyPartition(row, partition, from, batch.readTo, events)
            // only what is committed: the next commit compares against it
            positions.set(partition, batch.readTo)
          }),
        )
        const rejected = outcomes.find((outcome) => outcome.status === 'rejected')
        if (rejected) throw rejected.reason
      } catch (error) {
        next = undefined
        if (error instanceof Stopped) return
        if (error instanceof BatchFailure) return this.#fail(error.message)
        if (!isTransient(error)) return this.#fail(messageOf(error))
        this.deps.log.warn({ err: error, backfill: this.id }, 'backfill batch failed; retrying')
        await sleep(RETRY_MS)
        continue
      }
      cursor = batch.readTo
      await this.#progress()
    }
    if (this.#stopping) return
    row = await getBackfill(this.deps.sql, this.projection, this.id)
    await (row.atomic ? this.#handOver(row) : this.#complete(row))
  }

  // A run that cannot start (the database refuses its selection, say) ends `failed` with the error (SPEC
  // "Details"), never queued and tried again for ever; only the database being away is tried again, by the
  // runner's next round.
  async #begin(): Promise<BackfillRow> {
    const row = await getBackfill(this.deps.sql, this.projection, this.id)
    if (row.status !== 'queued') return row
    try {
      return await this.#start(row)
    } catch (error) {
      if (isTransient(error)) throw error
      await this.#fail(messageOf(error))
      return getBackfill(this.deps.sql, this.projection, this.id)
    }
  }

  // queued → running: the selection is fixed against the gap-safe head of this moment, partitions get their
  // checkpoints, and a non-atomic run snapshots the documents it is about to change, once (claimSnapshot).
  async #start(row: BackfillRow): Promise<BackfillRow> {
    const selection = await selectEvents(this.deps.sql, row, this.projector, this.deps.head)
    const snapshotId = row.atomic ? null : (row.snapshotId ?? (await this.deps.snapshot(this.projection, this.id)))
    const started = await changeProjection(this.deps.sql, this.projection, async (tx) => {
      const [updated] = await tx`
        update projection_backfills
           set status = 'running', after_position = ${selection.afterPosition}, to_position = ${selection.toPosition},
               from_time = ${selection.fromTime}, to_time = ${selection.toTime}, snapshot_id = ${snapshotId},
               started_at = now(), updated_at = now(),
               total = (select count(*) from events where ${selectionConditions(this.projector, tx, row.request, selection, selection.afterPosition, selection.toPosition)})
         where id = ${this.id} and status = 'queued'
        returning id`
      if (!updated) return false
      await tx`
        insert into projection_backfill_partitions (backfill, partition, position)
        select ${this.id}, partition, ${selection.afterPosition} from generate_series(0, ${row.partitions - 1}) as partition`
      return true
    })
    const current = await getBackfill(this.deps.sql, this.projection, this.id)
    if (started) {
      await this.deps.record(this.projection, 'ProjectionBackfillStarted', {
        backfillId: this.id,
        position: selection.afterPosition,
        toPosition: selection.toPosition,
        total: current.total,
        ...(snapshotId ? { snapshotId } : {}),
      })
    }
    return current
  }

  async #positions(): Promise<Map<number, number>> {
    const rows = await this.deps.sql<{ partition: number; position: number }[]>`
      select partition, position from projection_backfill_partitions where backfill = ${this.id} order by partition`
    return new Map(rows.map((row) => [row.partition, row.position]))
  }

  async #read(row: BackfillRow, after: number, to: number, limit: number): Promise<Batch> {
    const { sql } = this.deps
    const rows = await eventPage<StoredEventText & { tenant: string; partition: number }>(
      sql,
      sql`tenant, ${eventTextColumns(sql)}, mod(hashtext(stream_id)::bigint + 2147483648, ${row.partitions})::int as partition`,
      selectionConditions(this.projector, sql, row.request, row, after, to),
      { order: sql`global_position`, key: sql`global_position`, limit, maxBytes: this.maxBatchBytes },
    )
    const { events, partitions } = await this.#parse(rows)
    // the next read starts right after the last event when more follow; else every selected event up to `to` is here
    return { events, partitions, readTo: (rows.at(-1)?.following ?? null) !== null ? events.at(-1)!.globalPosition : to }
  }

  // A batch is read ahead while the one before it is applied: its events are parsed a turn at a time
  // (take-turns.ts), so parsing thousands of them never holds up the requests served meanwhile.
  async #parse(rows: (StoredEventText & PageColumns & { tenant: string; partition: number })[]): Promise<Omit<Batch, 'readTo'>> {
    const exact = this.projector.kind === 'declarative'
    const events = new Array<ProjectionEvent>(rows.length)
    const partitions = new Array<number>(rows.length)
    const turns = new Turns()
    for (let index = 0; index < rows.length; index++) {
      const turn = turns.due()
      if (turn) await turn
      // the paging columns and the partition are the job's, never event fields a handler could read (as takePage,
      // in the one copy)
      const { partition, following: _, followingBytes: __, pageBytes: ___, ...stored } = rows[index]!
      partitions[index] = partition
      events[index] = parseEvent(stored, exact, this.deps.keyring)
    }
    return { events, partitions }
  }

  // One partition's share of a batch, with its checkpoint, in one transaction (apply-batch.ts). A cancel
  // holds the projection lock exclusively while it drops what the run wrote, so it waits for this commit, or
  // this batch sees the cancel. A non-atomic run writes the live documents: the shared generation lock keeps
  // the live worker's batches (exclusive) from interleaving with ours. A failing event fails the whole run.
  async #applyPartition(row: BackfillRow, partition: number, from: number, to: number, events: ProjectionEvent[]): Promise<void> {
    await applyBatch(this.deps.sql, {
      projection: this.projection,
      generation: row.generation,
      projector: this.projector,
      upcast: this.deps.upcast,
      documents: row.atomic ? 'own' : 'shared',
      onFailure: 'abort',
      // a statement of its own, after the lock: a cancel that held the lock has committed and shows here
      check: async (tx) => {
        const [current] = await tx<{ status: string }[]>`select status from projection_backfills where id = ${this.id}`
        if (current?.status !== 'running' || this.#stopping) throw new Stopped()
      },
      advance: async (tx, _, __, applied) => {
        const moved = await tx`
          update projection_backfill_partitions
             set position = ${to}, processed = processed + ${applied}, updated_at = now()
           where backfill = ${this.id} and partition = ${partition} and position = ${from}
          returning partition`
        if (moved.length !== 1) throw new Stopped()
        return true
      },
    }, { events, from, readTo: to })
  }

  async #progress(): Promise<void> {
    if (Date.now() - this.#lastProgress < PROGRESS_EVERY_MS) return
    const row = await getBackfill(this.deps.sql, this.projection, this.id)
    await this.deps.record(this.projection, 'ProjectionBackfillProgress', {
      backfillId: this.id,
      processed: row.processed,
      total: row.total,
      position: Math.min(...(await this.#positions()).values()),
    })
    // counted from the end of this append, so the next one's createdAt is at least 5 s after this one's
    this.#lastProgress = Date.now()
  }

  // Every selected event is in the new generation: it now follows the live head with its own worker
  // from the end of the selection, and the runner swaps it in once it has caught up.
  async #handOver(row: BackfillRow): Promise<void> {
    const handed = await changeProjection(this.deps.sql, this.projection, async (tx) => {
      const [updated] = await tx`
        update projection_backfills set status = 'swapping', updated_at = now()
         where id = ${this.id} and status = 'running'
        returning id`
      if (!updated) return false
      await setCheckpoint(tx, this.projection, row.generation, row.toPosition!, 'while-building')
      return true
    })
    if (handed) this.deps.settled(this)
  }

  async #complete(row: BackfillRow): Promise<void> {
    const finished = await changeProjection(this.deps.sql, this.projection, (tx) => finishBackfill(tx, this.id, 'completed'))
    if (!finished) return
    await this.deps.record(
      this.projection,
      'ProjectionBackfillCompleted',
      { backfillId: this.id, processed: finished.processed, total: finished.total, position: row.toPosition },
      finished.correlationId,
    )
    this.deps.settled(this)
  }

  async #fail(message: string): Promise<void> {
    const failed = await changeProjection(this.deps.sql, this.projection, (tx) => finishBackfill(tx, this.id, 'failed', message))
    if (!failed) return
    this.deps.log.warn({ backfill: this.id, projection: this.projection, error: message }, 'backfill failed')
    await this.deps.record(this.projection, 'ProjectionBackfillFailed', { backfillId: this.id, error: message }, failed.correlationId)
    this.deps.settled(this)
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
