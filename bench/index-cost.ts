import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { connect, withDatabase, type Sql } from '../src/db/connect.js'
import { migrate } from '../src/db/migrate.js'
import { attempt, say } from './report.js'
import { loadBenchSettings } from './settings.js'

// `npx tsx bench/index-cost.ts`: what each index of `events` costs an append. On a database of its own
// (annalist_bench_indexes, or BENCH_DATABASE_NAME), migrated like the server's, pgbench calls append_events()
// (sql/0003) from INDEX_CLIENTS (8) clients for BENCH_SECONDS, once with every index, once without each one, once
// with none but the primary key, and once per extra set named in INDEX_SETS (`name=idx1+idx2`, `;`-separated: only
// those indexes and the primary key). Each run starts from an empty table (truncated, then checkpointed).
// INDEX_ROUNDS (3) rounds, variants in the same order each round; medians at the end. Both shapes: 1 event
// and 10 events per call (the anchors' payload and metadata, correlationId included). Besides appends/s it
// reports the CPU its backends used per event (from /proc, so a busy machine does not inflate it).

const settings = attempt(loadBenchSettings)
const database = process.env.BENCH_DATABASE_NAME || 'annalist_bench_indexes'
const clients = Number(process.env.INDEX_CLIENTS ?? 8)
const rounds = Number(process.env.INDEX_ROUNDS ?? 3)
const seconds = Math.max(1, Math.round(settings.seconds))
const shapes = (process.env.INDEX_SHAPES ?? '1,10').split(',').map(Number)
const CLOCK_TICKS = 100

interface Variant {
  name: string
  // the indexes of events dropped for this run (their definitions restored after it)
  drop: string[]
}

interface Run {
  variant: string
  shape: number
  eventsPerSecond: number
  cpuUsPerEvent: number
}

const indexDefinitions = async (sql: Sql) =>
  sql<{ name: string; definition: string; constraint: string | null; constraintDefinition: string | null }[]>`
    select i.relname as name, pg_get_indexdef(i.oid) as definition, c.conname as constraint,
           pg_get_constraintdef(c.oid) as "constraintDefinition"
      from pg_index x
      join pg_class i on i.oid = x.indexrelid
      left join pg_constraint c on c.conindid = i.oid and c.conrelid = x.indrelid
     where x.indrelid = 'events'::regclass
     order by i.relname`

const events = (count: number): string => {
  const data = readFileSync(path.join(settings.anchorsDir, 'payload.json'), 'utf8').trim()
  const metadata = readFileSync(path.join(settings.anchorsDir, 'metadata.json'), 'utf8').trim()
  return `[${Array.from({ length: count }, () => `{"type":"OrderPlaced","data":${data},"metadata":${metadata}}`).join(',')}]`
}

const script = (dir: string, count: number): string => {
  const file = path.join(dir, `append-${count}.sql`)
  const literal = events(count).replaceAll("'", "''")
  writeFileSync(file, `\\set n random(1, 100)\nselect * from append_events('default', 's-' || :client_id || '-' || :n, 'any', null, '${literal}'::json);\n`)
  return file
}

const backendTicks = async (sql: Sql): Promise<number> => {
  const pids = await sql<{ pid: number }[]>`select pid from pg_stat_activity where datname = ${database} and application_name = 'pgbench'`
  let ticks = 0
  for (const { pid } of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {}
  }
  return ticks
}

// pgbench for `seconds`; backend CPU is sampled once its clients are connected and just before they end.
const pgbench = async (sql: Sql, file: string): Promise<{ tps: number; cpuSeconds: number }> => {
  const url = new URL(settings.adminUrl)
  const child = spawn('pgbench', ['-n', '-M', 'prepared', '-f', file, '-c', String(clients), '-j', '2', '-T', String(seconds), database], {
    env: { ...process.env, PGHOST: '127.0.0.1', PGPORT: url.port || '5432', PGUSER: decodeURIComponent(url.username) || 'postgres', PGAPPNAME: 'pgbench' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const closed = new Promise<number | null>((resolve) => child.once('close', resolve))
  await new Promise((resolve) => setTimeout(resolve, 500))
  const before = await backendTicks(sql)
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000 - 800))
  const after = await backendTicks(sql)
  const code = await closed
  const tps = /tps = ([\d.]+)/.exec(output)
  if (code !== 0 || !tps) throw new Error(`pgbench failed (${code}): ${output.trim().split('\n').slice(-3).join(' | ')}`)
  return { tps: Number(tps[1]), cpuSeconds: (after - before) / CLOCK_TICKS / ((seconds * 1000 - 1300) / 1000) }
}

type IndexDefinition = { definition: string; constraint: string | null; constraintDefinition: string | null }

// `run` on an empty table without the variant's indexes, then the table emptied and the indexes put back.
const withDropped = async <T>(sql: Sql, variant: Variant, definitions: Map<string, IndexDefinition>, run: () => Promise<T>): Promise<T> => {
  await sql`truncate events, streams`
  for (const name of variant.drop) {
    const { constraint } = definitions.get(name)!
    if (constraint) await sql`alter table events drop constraint ${sql(constraint)}`
    else await sql`drop index ${sql(name)}`
  }
  await sql`checkpoint`
  try {
    return await run()
  } finally {
    await sql`truncate events, streams`
    for (const name of variant.drop) {
      const { definition, constraint, constraintDefinition } = definitions.get(name)!
      await sql.unsafe(constraint ? `alter table events add constraint ${constraint} ${constraintDefinition}` : definition)
    }
  }
}

const runVariant = async (sql: Sql, variant: Variant, definitions: Map<string, IndexDefinition>, file: string, shape: number): Promise<Run> =>
  withDropped(sql, variant, definitions, async () => {
    const { tps, cpuSeconds } = await pgbench(sql, file)
    const eventsPerSecond = tps * shape
    return { variant: variant.name, shape, eventsPerSecond, cpuUsPerEvent: (cpuSeconds / eventsPerSecond) * 1e6 }
  })

const BULK_EVENTS = Number(process.env.INDEX_BULK_EVENTS ?? 100_000)
let sizesShown = false

const ownTicks = async (sql: Sql): Promise<number> => {
  const [{ pid }] = (await sql<{ pid: number }[]>`select pg_backend_pid() as pid`) as unknown as [{ pid: number }]
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return Number(fields[11]) + Number(fields[12])
}

// One INSERT … SELECT of BULK_EVENTS events into an empty table, as appends lay them out (1,000 streams of one
// tenant, versions in order, five types, random event ids, the anchors' payload): backend CPU per event. Without
// round trips, commits or other clients, this is the index maintenance alone, to the 10 ms tick.
const bulkInsert = async (sql: Sql, variant: Variant, definitions: Map<string, IndexDefinition>): Promise<number> => {
  const data = readFileSync(path.join(settings.anchorsDir, 'payload.json'), 'utf8').trim()
  const metadata = readFileSync(path.join(settings.anchorsDir, 'metadata.json'), 'utf8').trim()
  return withDropped(sql, variant, definitions, async () => {
    const before = await ownTicks(sql)
    await sql`
      insert into events (global_position, tenant, stream_id, category, stream_version, event_id, type, data, metadata, created_at)
      select nextval('events_global_position_seq'), 'default', 's-' || (g % 1000), 's', g / 1000 + 1, gen_random_uuid(),
             'Type' || (g % 5), ${data}::text::json, ${metadata}::text::json, now()
        from generate_series(0, ${BULK_EVENTS - 1}) as g`
    const cpu = (((await ownTicks(sql)) - before) / CLOCK_TICKS / BULK_EVENTS) * 1e6
    if (variant.drop.length === 0 && !sizesShown) {
      sizesShown = true
      const sizes = await sql<{ name: string; pages: number }[]>`
        select c.relname as name, pg_relation_size(c.oid) / 8192 as pages
          from pg_index x join pg_class c on c.oid = x.indexrelid
         where x.indrelid = 'events'::regclass order by 1`
      say(`  index sizes after ${BULK_EVENTS} events: ${sizes.map(({ name, pages }) => `${name} ${pages} pages`).join(', ')}`)
    }
    return cpu
  })
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

const variantsOf = (names: string[]): Variant[] => {
  const primary = names.find((name) => name.endsWith('_pkey'))
  const sets = (process.env.INDEX_SETS ?? '').split(';').filter(Boolean).map((set) => {
    const [name, list] = set.split('=') as [string, string]
    const keep = new Set(list.split('+'))
    return { name, drop: names.filter((index) => index !== primary && !keep.has(index)) }
  })
  return [
    { name: 'all indexes', drop: [] },
    ...names.map((name) => ({ name: `without ${name}`, drop: [name] })),
    { name: 'primary key only', drop: names.filter((name) => name !== primary) },
    ...sets,
  ]
}

const signed = (value: number, digits: number): string => (value >= 0 ? '+' : '') + value.toFixed(digits)
const loadAverage = (): string => os.loadavg().map((load) => load.toFixed(1)).join(' ')

const runBulk = async (sql: Sql, variants: Variant[], definitions: Map<string, IndexDefinition>): Promise<void> => {
  const bulk = new Map<string, number[]>()
  for (let round = 1; round <= rounds; round += 1) {
    for (const variant of variants) bulk.set(variant.name, [...(bulk.get(variant.name) ?? []), await bulkInsert(sql, variant, definitions)])
  }
  const base = median(bulk.get('all indexes')!)
  say(`\nbulk: one INSERT … SELECT of ${BULK_EVENTS} events, backend CPU per event, median of ${rounds}`)
  for (const variant of variants) {
    const cpu = median(bulk.get(variant.name)!)
    say(`  ${variant.name.padEnd(44)} ${cpu.toFixed(2).padStart(6)} µs/event (${signed(cpu - base, 2)})`)
  }
}

const runAppends = async (sql: Sql, variants: Variant[], definitions: Map<string, IndexDefinition>, dir: string): Promise<void> => {
  const runs: Run[] = []
  for (let round = 1; round <= rounds; round += 1) {
    for (const shape of shapes) {
      const file = script(dir, shape)
      for (const variant of variants) {
        const run = await runVariant(sql, variant, definitions, file, shape)
        runs.push(run)
        say(`  round ${round}, ${shape} event(s) per call, ${variant.name}: ${run.eventsPerSecond.toFixed(0)} events/s, backend CPU ${run.cpuUsPerEvent.toFixed(1)} µs per event`)
      }
    }
  }
  say(`\nmedians of ${rounds} (load average at the end ${loadAverage()})`)
  for (const shape of shapes) {
    const of = (name: string) => runs.filter((run) => run.shape === shape && run.variant === name)
    const base = median(of('all indexes').map((run) => run.eventsPerSecond))
    const baseCpu = median(of('all indexes').map((run) => run.cpuUsPerEvent))
    for (const variant of variants) {
      const eventsPerSecond = median(of(variant.name).map((run) => run.eventsPerSecond))
      const cpu = median(of(variant.name).map((run) => run.cpuUsPerEvent))
      say(`  ${shape} ev/call  ${variant.name.padEnd(44)} ${eventsPerSecond.toFixed(0).padStart(7)} events/s (${(eventsPerSecond / base).toFixed(2)}x)  backend CPU ${cpu.toFixed(1).padStart(6)} µs/event (${signed(cpu - baseCpu, 1)})`)
    }
  }
}

// INDEX_FILLFACTOR=90: the indexes as they were before sql/0017, for a before/after in one run
const resetFillfactor = async (sql: Sql): Promise<void> => {
  const fillfactor = Number(process.env.INDEX_FILLFACTOR ?? 0)
  if (!fillfactor) return
  for (const name of ['events_pkey', 'events_tenant_position_idx', 'events_type_idx', 'events_category_idx', 'events_correlation_id_idx']) {
    await sql`alter index ${sql(name)} set (fillfactor = ${sql.unsafe(String(fillfactor))})`
  }
}

const main = async (): Promise<void> => {
  const admin = connect(settings.adminUrl, { max: 1 })
  await admin`drop database if exists ${admin(database)} with (force)`
  await admin`create database ${admin(database)}`
  const sql = connect(withDatabase(settings.adminUrl, database), { max: 1 })
  const dir = mkdtempSync(path.join(os.tmpdir(), 'annalist-index-cost-'))
  try {
    await migrate(sql)
    await resetFillfactor(sql)
    const rows = await indexDefinitions(sql)
    const definitions = new Map(rows.map((row) => [row.name, row]))
    const variants = variantsOf(rows.map((row) => row.name))
    say(`index cost, ${new Date().toISOString()}: ${clients} clients, ${seconds} s per run, ${rounds} rounds, append_events() with 1 and 10 events per call; load average ${loadAverage()}`)
    for (const row of rows) say(`  ${row.name}: ${row.definition.replace(/^.* USING /, '')}`)
    await runBulk(sql, variants, definitions)
    if (process.env.INDEX_BULK_ONLY !== '1') await runAppends(sql, variants, definitions, dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
    await sql.end()
    if (process.env.BENCH_KEEP_DB !== '1') await admin`drop database if exists ${admin(database)} with (force)`
    await admin.end()
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
