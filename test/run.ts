// `npm test`: the whole suite on PostgreSQL, then the core files again on the embedded database
// (ANNALIST_TEST_DATABASE=embedded, read by test/helpers/test-database.ts) together with the
// embedded-only files. Without a reachable PostgreSQL, only the embedded run, and it says so. The real
// PostgreSQL restart test restarts the machine's database server for everyone using it, so it is opt-in:
// with PG_RESTART_TEST=1 (.ci/run sets it) it runs on its own between the two, otherwise it is named as left out. The last
// line is tap's summary summed over both runs, in tap's own format (.ci/run reads it).
import { spawn } from 'node:child_process'
import postgres from 'postgres'

const EMBEDDED_FILES = [
  'test/db/embedded.test.ts',
  'test/db/pglite-session.test.ts',
  'test/events/append.test.ts',
  'test/events/log-head.test.ts',
  'test/events/upcasters.test.ts',
  'test/routes/streams.test.ts',
  'test/routes/appends.test.ts',
  'test/routes/subjects.test.ts',
  'test/events/rewrap-keys.test.ts',
  'test/routes/events.test.ts',
  'test/routes/load.test.ts',
  'test/routes/snapshots.test.ts',
  'test/routes/projections.test.ts',
  'test/routes/consumer-group-delivery.test.ts',
  'test/routes/projections/documents.test.ts',
  'test/routes/projections/backfills.test.ts',
  'test/projections/engine/declarative.test.ts',
  'test/projections/documents/documents.test.ts',
  'test/projections/documents/document-query.test.ts',
  'test/subscriptions/subscription.test.ts',
]

const RESTART_FILE = 'test/e2e/pg-restart.test.ts'

const SERVER_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

interface Counts {
  total: number
  pass: number
  fail: number
  skip: number
  todo: number
}

const reachable = async (): Promise<boolean> => {
  const sql = postgres(SERVER_URL, { max: 1, connect_timeout: 3, onnotice: () => {} })
  try {
    await sql`select 1`
    return true
  } catch {
    return false
  } finally {
    await sql.end({ timeout: 1 }).catch(() => undefined)
  }
}

// tap's closing line, e.g. "# { total: 62, pass: 61, fail: 1 }" (zero counts are left out)
const SUMMARY = /^# \{ total: \d+.*\}\s*$/m

const tap = (label: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; counts: Counts | undefined }> =>
  new Promise((resolve) => {
    process.stdout.write(`\n# ${label}\n`)
    const child = spawn(process.execPath, [tapBin, ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] })
    let tail = ''
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk)
      tail = (tail + chunk.toString('utf8')).slice(-4096)
    })
    child.on('close', (code) => {
      const line = [...tail.matchAll(new RegExp(SUMMARY, 'gm'))].at(-1)?.[0]
      resolve({ code: code ?? 1, counts: line ? parseCounts(line) : undefined })
    })
  })

const parseCounts = (line: string): Counts => {
  const count = (name: string): number => Number(new RegExp(`${name}: (\\d+)`).exec(line)?.[1] ?? 0)
  return { total: count('total'), pass: count('pass'), fail: count('fail'), skip: count('skip'), todo: count('todo') }
}

const tapBin = new URL('../node_modules/tap/dist/esm/run.mjs', import.meta.url).pathname

const main = async (): Promise<void> => {
  const runs: { code: number; counts: Counts | undefined }[] = []
  if (await reachable()) {
    runs.push(await tap(`PostgreSQL at ${new URL(SERVER_URL).host}: the whole suite`, ['--exclude=test/db/**'], { ...process.env, ANNALIST_TEST_DATABASE: '', PG_RESTART_TEST: '' }))
    // restarting PostgreSQL cuts every connection on the machine: alone, after the suite, never beside another file
    if (process.env.PG_RESTART_TEST === '1') {
      runs.push(await tap('PostgreSQL restarted under load, alone', ['--timeout=600', RESTART_FILE], { ...process.env, ANNALIST_TEST_DATABASE: '', PG_RESTART_TEST: '1' }))
    } else {
      process.stdout.write(`\n# left out: ${RESTART_FILE} restarts the PostgreSQL server itself; PG_RESTART_TEST=1 npm test runs it\n`)
    }
  } else {
    process.stdout.write(`\n# PostgreSQL is not reachable at ${new URL(SERVER_URL).host}: running on the embedded database only\n`)
  }
  // a fresh PGlite per file and the embedded servers of test/db start slower than a PostgreSQL database
  runs.push(await tap('embedded database (PGlite): the core files', ['--timeout=600', ...EMBEDDED_FILES], { ...process.env, ANNALIST_TEST_DATABASE: 'embedded' }))
  const sum: Counts = { total: 0, pass: 0, fail: 0, skip: 0, todo: 0 }
  for (const { counts } of runs) for (const key of Object.keys(sum) as (keyof Counts)[]) sum[key] += counts?.[key] ?? 0
  // a run that died before its summary still fails the whole
  if (runs.some(({ code, counts }) => !counts || (code !== 0 && counts.fail === 0))) sum.fail += 1
  const parts = Object.entries(sum).filter(([key, value]) => key === 'total' || value > 0)
  process.stdout.write(`\n# all runs (${runs.length}):\n# { ${parts.map(([key, value]) => `${key}: ${value}`).join(', ')} }\n`)
  process.exit(runs.every(({ code }) => code === 0) ? 0 : 1)
}

await main()
