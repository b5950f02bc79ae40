import type { Sql } from '../../db/connect.js'
import { SingleFlight } from '../../single-flight.js'
import { AUTOMATIC, copyLiveGeneration, lastAutomaticPosition, pruneAutomaticSnapshots } from './projection-snapshots.js'
import { recordSystemEvent } from '../system-events.js'
import type { SnapshotPolicy } from '../types.js'

export interface AutoSnapshotsOptions {
  log: { warn: (object: object, message: string) => void }
  // wakes local readers of the system event
}

// What a worker tells after its batch committed; each worker reads its generation's policy once.
export interface CommittedBatch {
  readonly name: string
  readonly generation: number
  readonly position: number
}

interface WorkerState {
  policy: SnapshotPolicy | null
  // the position of the last automatic snapshot, counted from
  base: number | undefined
}

// A declarative definition's `snapshots: {every, keep}` (SPEC "Backfills and rebuilds"): once the live
// generation's checkpoint is `every` or more global positions past the last automatic snapshot at or
// below it, take another, then keep the newest `keep` automatic ones. Runs beside the worker, never
// inside its batch, one snapshot of a projection at a time; commits meanwhile are looked at once after.
export class AutoSnapshots {
  // per worker, so a projection deleted and defined again, or restarted after a restore, starts afresh
  readonly #workers = new WeakMap<CommittedBatch, WorkerState>()
  // one snapshot of a projection at a time; commits meanwhile are looked at once after, the latest of them
  readonly #taking = new Map<string, SingleFlight<[CommittedBatch], void>>()
  #stopped = false

  constructor(private readonly sql: Sql, private readonly options: AutoSnapshotsOptions) {}

  committed(worker: CommittedBatch): void {
    if (this.#stopped || this.#workers.get(worker)?.policy === null) return
    let taking = this.#taking.get(worker.name)
    if (!taking) {
      taking = new SingleFlight((latest: CommittedBatch) =>
        this.#consider(latest, latest.name, latest.generation, latest.position)
          .catch((error) => this.options.log.warn({ err: error, projection: latest.name }, 'automatic projection snapshot failed')))
      this.#taking.set(worker.name, taking)
    }
    void taking.run(worker)
  }

  // Lets a snapshot being taken finish.
  async stop(): Promise<void> {
    this.#stopped = true
    await Promise.all([...this.#taking.values()].map((taking) => taking.settled()))
  }

  async #consider(worker: CommittedBatch, name: string, generation: number, position: number): Promise<void> {
    const state = this.#workers.get(worker) ?? { policy: await this.#policy(name, generation), base: undefined }
    this.#workers.set(worker, state)
    const { policy } = state
    if (!policy) return
    // first time here, or the checkpoint went back: count from the automatic snapshot below it
    if (state.base === undefined || position < state.base) state.base = await lastAutomaticPosition(this.sql, name, position)
    if (position - state.base < policy.every) return
    const snapshot = await copyLiveGeneration(this.sql, name, AUTOMATIC, generation)
    // without a snapshot this is not the live generation (yet): count again from here
    state.base = snapshot?.position ?? position
    if (!snapshot) return
    await pruneAutomaticSnapshots(this.sql, name, policy.keep)
    await recordSystemEvent(this.sql, name, 'ProjectionSnapshotCreated', { snapshotId: snapshot.id, position: snapshot.position, reason: AUTOMATIC })
  }

  async #policy(name: string, generation: number): Promise<SnapshotPolicy | null> {
    const [row] = await this.sql<{ policy: SnapshotPolicy | null }[]>`
      select definition -> 'snapshots' as policy
        from projection_generations
       where projection = ${name}
         and generation = ${generation}`
    return row?.policy ?? null
  }
}
