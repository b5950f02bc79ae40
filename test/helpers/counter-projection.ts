import type { Test } from 'tap'
import { LOCK_CLASS } from '../../src/db/advisory-locks.js'
import type { Sql } from '../../src/db/connect.js'
import type { ServerProcess } from './server-process.js'
import { waitFor } from './wait-for.js'

// A declarative counter over the `tick` category: one document per bucket, `count` +1 per Tick event.
export const COUNTER = 'counter'
export const COUNTER_DEFINITION = {
  source: { categories: ['tick'] },
  documentId: '$.data.bucket',
  handlers: { Tick: { inc: { count: 1 } } },
}
// the runner's ownership lock (src/projections/runner.ts); the second key is hashtext(name)
export const PROJECTION_LOCK_CLASS = LOCK_CLASS.projectionOwner

export const putCounter = async (t: Test, server: ServerProcess): Promise<void> => {
  const response = await server.request('PUT', `/projections/${COUNTER}`, { body: COUNTER_DEFINITION })
  t.equal(response.status, 201, `PUT /projections/${COUNTER} creates the counter projection`)
}

export interface Checkpoint {
  position: number
  // the highest document version of the live generation, read in the same snapshot
  maxVersion: number
  // the highest position stored in the log, same snapshot
  lastStored: number
}

export const readCheckpoint = async (sql: Sql): Promise<Checkpoint> => {
  const [row] = await sql<Checkpoint[]>`
    select g.position,
           coalesce((select max(d.version) from projection_documents d where d.projection = g.projection and d.generation = g.generation), 0) as "maxVersion",
           coalesce((select max(global_position) from events), 0) as "lastStored"
      from projections p
      join projection_generations g on g.projection = p.name and g.generation = p.live_generation
     where p.name = ${COUNTER}`
  if (!row) throw new Error(`no live generation for ${COUNTER}`)
  return row
}

export interface LockHolder {
  pid: number
  applicationName: string
}

// Backends of this database holding the counter's advisory lock (advisory locks are per database).
export const lockHolders = (sql: Sql): Promise<LockHolder[]> => sql<LockHolder[]>`
  select l.pid, a.application_name as "applicationName"
    from pg_locks l
    join pg_stat_activity a on a.pid = l.pid
   where l.locktype = 'advisory'
     and l.granted
     and l.database = (select oid from pg_database where datname = current_database())
     and l.classid = ${PROJECTION_LOCK_CLASS}
     and l.objid::bigint = (hashtext(${COUNTER})::bigint & 4294967295)
     and l.objsubid = 2
   order by l.pid`

// Applications whose backends' latest statement (since `since`) was part of a projection worker's
// batch: its source read, document preload, document write or checkpoint move.
export const projectionWorkers = async (sql: Sql, since?: string): Promise<string[]> => {
  const rows = await sql<{ applicationName: string }[]>`
    select distinct application_name as "applicationName"
      from pg_stat_activity
     where datname = current_database()
       and (query ilike '%update projection_generations%set position%'
            or query ilike '%insert into projection_documents%'
            or query ilike '%jsonb_to_recordset%as k(tenant text, id text)%'
            or query ilike '%from events%category = any%')
       and query not ilike '%pg_stat_activity%'
       ${since === undefined ? sql`` : sql`and query_start > ${since}`}
     order by 1`
  return rows.map((row) => row.applicationName)
}

// GET /projections/counter until it reports lag 0 at or past `position`; returns that view.
export const waitCaughtUp = async (server: ServerProcess, position: number, timeoutMs = 60_000): Promise<any> => {
  let view: any
  await waitFor(`${COUNTER} to reach lag 0 at position >= ${position}`, async () => {
    const response = await server.request('GET', `/projections/${COUNTER}`)
    view = response.body
    return response.status === 200 && view.lag === 0 && view.position >= position
  }, { timeoutMs, intervalMs: 50 })
  return view
}

interface BucketRow {
  id: string
  count: number
  version: number
}

// Exactly once: each bucket's document counts exactly the Tick events stored for it, its version is the
// position of the last of them, and no document is ahead of the checkpoint. Returns the events checked.
export const checkCounter = async (t: Test, sql: Sql, label: string): Promise<number> => {
  const stored = await sql<BucketRow[]>`
    select data ->> 'bucket' as id, count(*)::int as count, max(global_position) as version
      from events
     where tenant = 'default' and category = 'tick' and type = 'Tick'
     group by 1
     order by 1`
  const documents = await sql<BucketRow[]>`
    select d.id, (d.document ->> 'count')::int as count, d.version
      from projections p
      join projection_documents d on d.projection = p.name and d.generation = p.live_generation
     where p.name = ${COUNTER} and d.tenant = 'default'
     order by d.id`
  const total = stored.reduce((sum, row) => sum + row.count, 0)
  t.same(documents.map(({ id, count }) => ({ id, count })), stored.map(({ id, count }) => ({ id, count })),
    `${label}: every bucket's count equals its stored Tick events (${stored.map((row) => `${row.id}=${row.count}`).join(' ')})`)
  t.equal(documents.reduce((sum, row) => sum + row.count, 0), total, `${label}: the counts add up to all ${total} stored Tick events`)
  t.same(documents.map(({ id, version }) => ({ id, version })), stored.map(({ id, version }) => ({ id, version })),
    `${label}: each document's version is the position of its bucket's last event`)
  const checkpoint = await readCheckpoint(sql)
  t.ok(checkpoint.maxVersion <= checkpoint.position, `${label}: no document version (max ${checkpoint.maxVersion}) exceeds the checkpoint (${checkpoint.position})`)
  return total
}

export interface Sample extends Checkpoint {
  at: number
  holders: LockHolder[]
  // applications whose backends were seen running projection batches
  workers: string[]
}

// Samples the checkpoint, the documents' top version and the lock holders until stopped, so a test can
// assert that the checkpoint never went backwards, never trailed a document, and the lock had one holder.
export class CheckpointSampler {
  readonly samples: Sample[] = []
  #stopping = false
  #loop: Promise<void> | undefined

  constructor(private readonly sql: Sql) {}

  start(intervalMs = 20): this {
    this.#loop = (async () => {
      for (let round = 0; round < 100_000 && !this.#stopping; round++) {
        const [checkpoint, holders, workers] = await Promise.all([readCheckpoint(this.sql), lockHolders(this.sql), projectionWorkers(this.sql)])
        this.samples.push({ at: Date.now(), ...checkpoint, holders, workers })
        await new Promise((resolve) => setTimeout(resolve, intervalMs))
      }
    })()
    return this
  }

  async stop(): Promise<void> {
    this.#stopping = true
    await this.#loop
  }

  get last(): Sample | undefined {
    return this.samples.at(-1)
  }

  regressions(): string[] {
    return this.samples.flatMap((sample, index) => {
      const previous = this.samples[index - 1]
      return previous && sample.position < previous.position ? [`${previous.position} -> ${sample.position} at +${sample.at - this.samples[0]!.at} ms`] : []
    })
  }

  aheadOfCheckpoint(): string[] {
    return this.samples.filter((sample) => sample.maxVersion > sample.position).map((sample) => `version ${sample.maxVersion} > checkpoint ${sample.position}`)
  }

  check(t: Test, label: string): void {
    t.ok(this.samples.length > 10, `${label}: the checkpoint was sampled (${this.samples.length} samples)`)
    t.same(this.regressions(), [], `${label}: the checkpoint never went backwards`)
    t.same(this.aheadOfCheckpoint(), [], `${label}: no document version was ever ahead of the committed checkpoint`)
  }
}
