import { LOCK_CLASS, lockKey } from '../../db/advisory-locks.js'
import type { Sql, Tx } from '../../db/connect.js'
import { applyEvent, documentKeyOf, type Projector } from './apply-event.js'
import { DocumentSession } from './document-session.js'
import { messageOf } from './transient-errors.js'
import { Turns } from './take-turns.js'
import { generationLock } from '../generation-lock.js'
import type { ProjectionEvent } from '../types.js'

// a failure belongs to the tenant of its event (docs/projection-failures.md)
export interface ProjectionFailure {
  tenant: string
  position: number
  eventId: string
  message: string
}

// Where one batch goes: the live worker's generation, or one partition of a backfill.
export interface BatchTarget {
  projection: string
  generation: number
  projector: Projector
  upcast: (event: ProjectionEvent) => ProjectionEvent
  // the generation's documents: the live worker writes them alone (exclusive); a non-atomic backfill's
  // partitions, disjoint streams, side by side (shared); an atomic backfill owns its generation (none)
  documents: 'exclusive' | 'shared' | 'own'
  // a failing event: the live worker commits what came before it and reports it ('commit-before'); a
  // backfill gives the whole batch up ('abort': applyBatch throws BatchFailure, nothing commits)
  onFailure: 'commit-before' | 'abort'
  // after the locks, before anything is applied: throws to give the batch up (a backfill that ended)
  check?: (tx: Tx) => Promise<void>
  // after the locks: the tenants whose events this batch passes over (held after a failure)
  held?: (tx: Tx, from: number) => Promise<ReadonlySet<string>>
  // after the holds: the live generation's held tenants and their own checkpoints as this batch commits them, when the
  // target's generation is the live one (undefined otherwise), so waiters need no read of their own (progress.ts)
  liveHolds?: (tx: Tx) => Promise<Record<string, number> | undefined>
  // the checkpoint's compare-and-set from `from` to `to`, in the batch's transaction; false when it moved
  advance: (tx: Tx, from: number, to: number, applied: number) => Promise<boolean>
}

export interface Batch {
  events: ProjectionEvent[]
  // the checkpoint the batch starts from, and the position it has read through
  from: number
  readTo: number
}

export type BatchOutcome = (
  | { kind: 'applied'; position: number }
  | { kind: 'failed'; position: number; failure: ProjectionFailure }
) & {
  // the live generation's holds as committed with the batch (BatchTarget.liveHolds)
  liveHolds?: Record<string, number>
}

// The checkpoint moved under the batch: another instance (or a reset, a restore) has it. Nothing committed.
export class LostCheckpoint extends Error {}

// A failing event of an 'abort' target. Nothing committed.
export class BatchFailure extends Error {
  constructor(
    readonly failure: ProjectionFailure,
    type: string,
  ) {
    super(`event ${failure.position} (${failure.eventId}, ${type}): ${failure.message}`)
  }
}

// The projection engine (SPEC "Projections": exactly once): one transaction takes the locks in the order
// of projection-lock.ts, loads the batch's documents at once, applies its events in memory, writes the
// documents and moves the checkpoint. Documents and checkpoint commit together or not at all.
// Statements of one transaction go out together and run in order on its connection (postgres.js pipelines them), so
// what needs no answer from the statement before it costs no round trip of its own: the check, the holds and the batch's
// documents are read under the locks taken just before them, and the checkpoint moves right after the documents are
// written.
export const applyBatch = (sql: Sql, target: BatchTarget, batch: Batch): Promise<BatchOutcome> =>
  sql.begin(async (tx) => {
    const journal = target.onFailure === 'commit-before'
    const session = new DocumentSession(tx, target.projection, target.generation, journal, target.projector.kind === 'declarative')
    const [, , held = NONE, , liveHolds] = await Promise.all([
      lockFor(tx, target),
      target.check?.(tx),
      target.held?.(tx, batch.from),
      session.preload(keysOf(target.projector, batch.events)),
      target.liveHolds?.(tx),
    ])
    const events = held.size === 0 ? batch.events : batch.events.filter((event) => !held.has(event.tenant))
    const { outcome, applied } = await applyEvents(session, target, events, batch.readTo)
    const moves = outcome.position !== batch.from
    const [, advanced] = await Promise.all([session.flush(), moves && target.advance(tx, batch.from, outcome.position, applied)])
    if (moves && !advanced) throw new LostCheckpoint()
    return liveHolds ? { ...outcome, liveHolds } : outcome
  }) as Promise<BatchOutcome>

const NONE: ReadonlySet<string> = new Set()

// One transaction under the locks a batch of this target takes (a batch, or holding a tenant after one).
export const inBatchLocks = <T>(sql: Sql, target: BatchTarget, work: (tx: Tx) => Promise<T>): Promise<T> =>
  sql.begin(async (tx) => {
    await lockFor(tx, target)
    return work(tx)
  }) as Promise<T>

// the projection lock shared (a management call waits for the batch), then the generation's, in one round trip
// (a select list is evaluated in order)
const lockFor = async (tx: Tx, target: BatchTarget): Promise<void> => {
  const projection = lockKey(target.projection)
  const generation = generationLock.key(target.projection, target.generation)
  if (target.documents === 'exclusive') {
    await tx`select pg_advisory_xact_lock_shared(${LOCK_CLASS.projection}, ${projection}), pg_advisory_xact_lock(${generationLock.classId}, ${generation})`
  } else if (target.documents === 'shared') {
    await tx`select pg_advisory_xact_lock_shared(${LOCK_CLASS.projection}, ${projection}), pg_advisory_xact_lock_shared(${generationLock.classId}, ${generation})`
  } else {
    await tx`select pg_advisory_xact_lock_shared(${LOCK_CLASS.projection}, ${projection})`
  }
}

// The documents a batch's events name as read (before upcasting, before the holds are known): loaded with the locks,
// in their round trip. An event its upcaster gave another document has that one loaded before it is applied.
const keysOf = (projector: Projector, events: ProjectionEvent[]) => events.flatMap((event) => documentKeyOf(projector, event) ?? [])

const applyEvents = async (session: DocumentSession, target: BatchTarget, raws: ProjectionEvent[], readTo: number) => {
  let outcome: BatchOutcome = { kind: 'applied', position: readTo }
  const events: ProjectionEvent[] = []
  for (const raw of raws) {
    try {
      events.push(target.upcast(raw))
    } catch (error) {
      outcome = failed(target, raw, error)
      break
    }
  }
  await session.preload(keysOf(target.projector, events.filter((event, index) => event !== raws[index])))
  let applied = 0
  // a batch shares the process with requests (take-turns.ts)
  const turns = new Turns()
  for (const event of events) {
    const turn = turns.due()
    if (turn) await turn
    session.beginEvent()
    try {
      const pending = applyEvent(target.projector, session, event)
      if (pending) await pending
      session.endEvent()
      applied++
    } catch (error) {
      if (target.onFailure === 'commit-before') session.undoEvent()
      outcome = failed(target, event, error)
      break
    }
  }
  return { outcome, applied }
}

// the checkpoint stops right before the failing event
const failed = (target: BatchTarget, event: ProjectionEvent, error: unknown): BatchOutcome => {
  const failure = { tenant: event.tenant, position: event.globalPosition, eventId: event.eventId, message: messageOf(error) }
  if (target.onFailure === 'abort') throw new BatchFailure(failure, event.type)
  return { kind: 'failed', position: event.globalPosition - 1, failure }
}
