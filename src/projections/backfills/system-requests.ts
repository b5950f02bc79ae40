import type { Sql, Tx } from '../../db/connect.js'
import { eventColumns } from '../../events/event-columns.js'
import type { StoredEvent } from '../../events/schemas.js'
import { SYSTEM_TENANT } from '../../events/types.js'
import { Problem } from '../../problems.js'
import { SingleFlight } from '../../single-flight.js'
import type { LogWatcher } from '../../subscriptions/log-watcher.js'
import { checkBackfillRequest, checkConcurrency } from './backfill-request-schema.js'
import { createBackfill } from './backfill-runs.js'
import { PROJECTION_NAME_PATTERN } from '../definition-schema.js'
import { lockProjection } from '../projection-lock.js'
import type { ProjectionRunner } from '../runner.js'
import { projectorOf } from './backfill-commands.js'
import { appendSystemEvent, recordSystemEvent } from '../system-events.js'

export const REQUESTS_STREAM = '$projections'
const CURSOR = 'projection-requests'
const BATCH = 100
const ROUND_MS = 100
const NAME = new RegExp(PROJECTION_NAME_PATTERN)

// Acts on ProjectionBackfillRequested events appended to `$projections` exactly as POST …/backfills
// would (SPEC "System events"). The cursor moves in the transaction that queues the runs, so each
// request starts exactly one run across crashes and instances (an instance that finds the cursor row
// locked leaves the round to the one holding it).
export class BackfillRequests {
  readonly #rounds = new SingleFlight(() => this.#round())
  #stopped = false
  #lastRound = 0
  #timer: NodeJS.Timeout | undefined
  // every append advances the log: look at $projections at most every ROUND_MS, not on each advance; the watcher's
  // poll is soon enough for a request, so these looks wake no observation round of their own
  readonly #kick = (): void => {
    if (this.#timer || this.#stopped) return
    const wait = Math.max(0, this.#lastRound + ROUND_MS - Date.now())
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.drain()
    }, wait)
    this.#timer.unref()
  }

  constructor(
    private readonly sql: Sql,
    private readonly logWatcher: LogWatcher,
    private readonly runner: ProjectionRunner,
    private readonly log: { warn: (object: object, message: string) => void },
  ) {}

  start(): void {
    this.logWatcher.followPassively(this.#kick)
    this.#kick()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    this.logWatcher.unfollowPassively(this.#kick)
    clearTimeout(this.#timer)
    await this.#rounds.settled()
  }

  // Rounds never overlap; a call during one asks for one more after it.
  drain(): Promise<void> {
    return this.#rounds.run()
  }

  async #round(): Promise<void> {
    this.#lastRound = Date.now()
    try {
      while (!this.#stopped && (await this.#once())) {
        // a full batch: there may be more
      }
    } catch (error) {
      this.log.warn({ err: error }, 'projection requests round failed')
    }
  }

  async #once(): Promise<boolean> {
    const head = this.logWatcher.head
    // most rounds find no request: say so without a transaction, whose row lock would hold an xid and with it
    // the gap-safe head for every reader
    const [pending] = await this.sql<{ any: boolean }[]>`
      select exists (
        select from events e, system_cursors c
         where c.name = ${CURSOR}
           and e.tenant = ${SYSTEM_TENANT}
           and e.stream_id = ${REQUESTS_STREAM}
           and e.global_position > c.position
           and e.global_position <= ${head}
      ) as any`
    if (!pending?.any) return false
    const queued = await this.sql.begin(async (tx) => {
      const [cursor] = await tx<{ position: number }[]>`
        select position from system_cursors where name = ${CURSOR} for update skip locked`
      if (!cursor || cursor.position >= head) return undefined
      const requests = await tx<StoredEvent[]>`
        select ${eventColumns(tx as unknown as Sql)}
          from events
         where tenant = ${SYSTEM_TENANT}
           and stream_id = ${REQUESTS_STREAM}
           and global_position > ${cursor.position}
           and global_position <= ${head}
         order by global_position
         limit ${BATCH}`
      const names: string[] = []
      for (const request of requests) {
        if (request.type !== 'ProjectionBackfillRequested') continue
        const name = await tx.savepoint((savepoint) => this.#start(savepoint, request))
        if (name) names.push(name)
      }
      const through = requests.length === BATCH ? requests.at(-1)!.globalPosition : head
      await tx`update system_cursors set position = ${through} where name = ${CURSOR}`
      return { names, more: requests.length === BATCH }
    })
    if (!queued) return false
    if (queued.names.length > 0) await this.runner.changed()
    return queued.more
  }

  // The request's correlationId (its metadata's, or its own event id) goes on every event of the run.
  async #start(tx: Tx, request: StoredEvent): Promise<string | undefined> {
    const data = (request.data ?? {}) as Record<string, unknown>
    const { projection, ...body } = typeof data === 'object' && !Array.isArray(data) ? data : {}
    const correlationId = typeof request.metadata?.correlationId === 'string' ? request.metadata.correlationId : request.eventId
    const name = typeof projection === 'string' && NAME.test(projection) ? projection : undefined
    try {
      if (!name) throw new Problem('validation-failed', {}, 'the request names no valid projection (data.projection)')
      const checked = checkBackfillRequest(body)
      // the one multi-projection transaction: the cursor row, taken SKIP LOCKED, keeps it the only one
      await lockProjection(tx, name, 'exclusive')
      const projector = await projectorOf(tx, this.runner, name)
      const partitions = checkConcurrency(checked, projector)
      const id = await createBackfill(tx, { projection: name, request: checked, partitions, correlationId })
      await record(tx, name, 'ProjectionBackfillRequested', { backfillId: id, request: checked, requestPosition: request.globalPosition }, correlationId)
      return name
    } catch (error) {
      if (!(error instanceof Problem)) throw error
      // refused: the requester learns why from the projection's own stream (or `$projections` when there is no name)
      await record(tx, name, 'ProjectionBackfillFailed', { error: error.detail, code: error.code, requestPosition: request.globalPosition }, correlationId)
      return undefined
    }
  }

}

const record = (tx: Tx, name: string | undefined, type: 'ProjectionBackfillRequested' | 'ProjectionBackfillFailed', data: Record<string, unknown>, correlationId: string) =>
  name === undefined
    ? appendSystemEvent(tx as unknown as Sql, REQUESTS_STREAM, type, data, correlationId)
    : recordSystemEvent(tx as unknown as Sql, name, type, data, correlationId)
