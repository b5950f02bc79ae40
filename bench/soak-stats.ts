import { connect, type Sql } from '../src/db/connect.js'
import { num } from './report.js'
import { startWalSampler, type WalSample } from './soak-wal.js'

// What the database did per window of the soak, in figures that do not swing with the machine's load: per event
// stored, the buffers each relation of the append path read from outside shared_buffers or found in it, the WAL
// this database wrote (from a sample of the WAL itself: the cluster's counters also hold every other database's),
// and what checkpoints and autovacuum did meanwhile. Every query is one scan of a statistics view or of the
// buffer headers, once a window; the WAL sample reads at most SOAK_WAL_SAMPLE_MB per window.

const TABLES = ['events', 'streams']

interface Relation {
  read: number
  hit: number
  bytes: number
  // buffers of it in shared_buffers, and how many of those are dirty (pg_buffercache)
  cached?: number
  dirty?: number
}

interface Snapshot {
  events: number
  walBytes: number
  walFpi: number
  checkpoints: number
  requested: number
  autovacuums: number
  autoanalyzes: number
  relations: Map<string, Relation>
}

const take = async (sql: Sql, buffercache: boolean): Promise<Snapshot> => {
  const [wal] = await sql<{ bytes: number; fpi: number }[]>`select wal_bytes::float8 as bytes, wal_fpi as fpi from pg_stat_wal`
  const [checkpointer] = await sql<{ timed: number; requested: number }[]>`
    select checkpoints_timed as timed, checkpoints_req as requested from pg_stat_bgwriter`
  const tables = await sql<{ name: string; inserted: number; autovacuums: number; autoanalyzes: number }[]>`
    select relname as name, n_tup_ins as inserted, autovacuum_count as autovacuums, autoanalyze_count as autoanalyzes
      from pg_stat_user_tables
     where relname in ${sql(TABLES)}`
  const io = await sql<{ name: string; read: number; hit: number; bytes: number }[]>`
    select relname as name, heap_blks_read as read, heap_blks_hit as hit, pg_relation_size(relid) as bytes
      from pg_statio_user_tables where relname in ${sql(TABLES)}
    union all
    select indexrelname, idx_blks_read, idx_blks_hit, pg_relation_size(indexrelid)
      from pg_statio_user_indexes where relname in ${sql(TABLES)}`
  const relations = new Map(io.map(({ name, read, hit, bytes }) => [name, { read, hit, bytes } as Relation]))
  if (buffercache) {
    const cached = await sql<{ name: string; cached: number; dirty: number }[]>`
      select c.relname as name, count(*)::int as cached, count(*) filter (where b.isdirty)::int as dirty
        from pg_buffercache b
        join pg_class c on c.relfilenode = b.relfilenode
       where b.reldatabase = (select oid from pg_database where datname = current_database())
         and b.relforknumber = 0
       group by c.relname`
    for (const row of cached) Object.assign(relations.get(row.name) ?? {}, { cached: row.cached, dirty: row.dirty })
  }
  const events = tables.find((table) => table.name === 'events')
  return {
    events: events?.inserted ?? 0,
    walBytes: wal?.bytes ?? 0,
    walFpi: wal?.fpi ?? 0,
    checkpoints: (checkpointer?.timed ?? 0) + (checkpointer?.requested ?? 0),
    requested: checkpointer?.requested ?? 0,
    autovacuums: tables.reduce((sum, table) => sum + table.autovacuums, 0),
    autoanalyzes: tables.reduce((sum, table) => sum + table.autoanalyzes, 0),
    relations,
  }
}

const short = (name: string): string => name.replace(/^events_/, '').replace(/_(key|idx)$/, '')

const perEvent = (value: number, events: number, digits = 2): string => (events > 0 ? (value / events).toFixed(digits) : 'n/a')

// The relations of the append path, most buffer traffic first; idle ones (the BRIN, the subject index) are left out.
const describeBuffers = (before: Snapshot, after: Snapshot, events: number): string[] => {
  const rows = [...after.relations].map(([name, now]) => {
    const then = before.relations.get(name) ?? { read: 0, hit: 0, bytes: 0 }
    return { name, now, read: now.read - then.read, hit: now.hit - then.hit }
  })
  return rows
    .filter((row) => row.read + row.hit >= events / 10)
    .sort((a, b) => b.read + b.hit - (a.read + a.hit))
    .map(({ name, now, read, hit }) => {
      // the size is read a moment before the buffers, so a growing relation can show a few more buffers than pages
      const share = Math.min(100, ((now.cached ?? 0) * 8192 * 100) / Math.max(now.bytes, 8192))
      const cache = now.cached === undefined ? '' : `, ${num(share)}% cached, ${num(now.dirty ?? 0)} dirty`
      return `${short(name)} ${perEvent(read, events)}/${perEvent(hit, events)} (${num(now.bytes / 1048576, 1)} MB${cache})`
    })
}

const describeWal = (sample: WalSample | undefined): string => {
  if (!sample || sample.inserts === 0) return 'WAL sample: none'
  const fpi = [...sample.fpi].sort((a, b) => b[1] - a[1]).filter(([, count]) => count / sample.inserts >= 0.005)
  const each = fpi.map(([name, count]) => `${short(name)} ${perEvent(count, sample.inserts)}`).join(', ')
  return `this database's WAL (sampled ${num(sample.sampledBytes / 1048576, 1)} MB, ${num(sample.inserts)} events): ${num(sample.bytes / sample.inserts)} B/event, FPI/event ${perEvent(sample.fpiTotal, sample.inserts)}${each ? ` (${each})` : ''}`
}

export interface SoakStats {
  // called at the start of the measured span, then at the end of every window: the lines describing it
  begin: () => Promise<void>
  window: () => Promise<string[]>
  end: () => Promise<void>
}

export const startSoakStats = async (databaseUrl: string, sampleMb: number): Promise<SoakStats> => {
  const sql = connect(databaseUrl, { max: 1, applicationName: 'annalist-bench' })
  const buffercache = await sql`create extension if not exists pg_buffercache`.then(() => true, () => false)
  const wal = sampleMb > 0 ? await startWalSampler(sql, sampleMb) : undefined
  let last: Snapshot | undefined
  return {
    begin: async () => {
      last = await take(sql, buffercache)
      wal?.start()
    },
    window: async () => {
      const before = last!
      const after = (last = await take(sql, buffercache))
      const events = after.events - before.events
      const sample = await wal?.window()
      return [
        `${describeWal(sample)}; cluster (every database): ${events > 0 ? num((after.walBytes - before.walBytes) / events) : 'n/a'} B, ${perEvent(after.walFpi - before.walFpi, events)} FPI per event of ours; checkpoints ${after.checkpoints - before.checkpoints} (${after.requested - before.requested} requested)`,
        `buffers read/hit per event: ${describeBuffers(before, after, events).join('; ')}; autovacuum ${after.autovacuums - before.autovacuums}, autoanalyze ${after.autoanalyzes - before.autoanalyzes}`,
      ]
    },
    end: async () => {
      wal?.stop()
      await sql.end({ timeout: 5 })
    },
  }
}
