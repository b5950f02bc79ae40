import type { Sql } from '../src/db/connect.js'

// The cluster's WAL counters (pg_stat_wal) count every database's writes, and several benches share this
// Postgres. The WAL itself says which relation each record and each full-page image (FPI) is for: every few
// seconds the sampler reads the WAL written since its last look (at most a slice of it, so a window costs a
// bounded read) through pg_walinspect and counts, for this database's relations, the bytes of the records
// whose first block is theirs, the FPIs per relation and the heap inserts into events (the events stored).
// Commit records name no relation and are left out.

const TICK_MS = 3000

export interface WalSample {
  sampledBytes: number
  inserts: number
  bytes: number
  fpiTotal: number
  fpi: Map<string, number>
}

const empty = (): WalSample => ({ sampledBytes: 0, inserts: 0, bytes: 0, fpiTotal: 0, fpi: new Map() })

const read = async (sql: Sql, from: string, to: string, into: WalSample): Promise<void> => {
  const rows = await sql<{ relation: string; bytes: number; fpi: number; inserts: number }[]>`
    with blocks as (
      select w.resource_manager, w.record_type, w.record_length, b.ref[1]::oid as db, b.ref[2]::oid as node,
             b.ref[3] is not null as fpw, b.n
        from pg_get_wal_records_info(${from}::pg_lsn, ${to}::pg_lsn) as w
       cross join lateral regexp_matches(w.block_ref, 'rel \\d+/(\\d+)/(\\d+) fork \\w+ blk \\d+( \\(FPW\\))?', 'g')
             with ordinality as b(ref, n)
    )
    select c.relname as relation,
           coalesce(sum(record_length) filter (where n = 1), 0)::float8 as bytes,
           count(*) filter (where fpw)::int as fpi,
           count(*) filter (where n = 1 and resource_manager = 'Heap' and record_type like 'INSERT%' and c.relname = 'events')::int as inserts
      from blocks
      join pg_class c on c.relfilenode = blocks.node
     where blocks.db = (select oid from pg_database where datname = current_database())
     group by c.relname`
  into.sampledBytes += Number((await sql<{ span: string }[]>`select ${to}::pg_lsn - ${from}::pg_lsn as span`)[0]!.span)
  for (const row of rows) {
    into.bytes += row.bytes
    into.inserts += row.inserts
    into.fpiTotal += row.fpi
    into.fpi.set(row.relation, (into.fpi.get(row.relation) ?? 0) + row.fpi)
  }
}

export interface WalSampler {
  start: () => void
  // the sample gathered since the last call
  window: () => Promise<WalSample>
  stop: () => void
}

export const startWalSampler = async (sql: Sql, sampleMb: number): Promise<WalSampler | undefined> => {
  const available = await sql`create extension if not exists pg_walinspect`.then(() => true, () => false)
  if (!available) return undefined
  const slice = Math.max(1, Math.floor((sampleMb * 1048576 * TICK_MS) / 30_000))
  let sample = empty()
  let from: string | undefined
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> = Promise.resolve()
  const tick = async (): Promise<void> => {
    const [now] = await sql<{ flushed: string; to: string }[]>`
      select pg_current_wal_flush_lsn()::text as flushed,
             least(pg_current_wal_flush_lsn(), ${from ?? '0/0'}::pg_lsn + ${slice}::numeric)::text as to`
    // a tick without new WAL, or whose WAL was already recycled, adds nothing to the sample
    if (from !== undefined) await read(sql, from, now!.to, sample).catch(() => {})
    from = now!.flushed
  }
  return {
    start: () => {
      running = tick()
      timer = setInterval(() => {
        running = running.then(tick).catch(() => {})
      }, TICK_MS)
    },
    window: async () => {
      await running
      const done = sample
      sample = empty()
      return done
    },
    stop: () => clearInterval(timer),
  }
}
