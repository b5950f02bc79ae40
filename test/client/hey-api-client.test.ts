import { execFile } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { createClient } from '@hey-api/openapi-ts'
import { startServer } from '../helpers/server-process.js'
import { testDatabase } from '../helpers/test-database.js'

// The contract through a generator this project does not use itself (@hey-api/openapi-ts): generate a client
// from openapi.yaml (offline: the document is a local file), compile test/fixtures/hey-api/journey.ts against it
// with `tsc --strict`, and run it against the real server. A schema that hides a field, a problem a client
// cannot narrow by `code`, or an event stream typed as text fails the compile; a disagreement with the server
// fails the run.
const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const JOURNEY = join(ROOT, 'test/fixtures/hey-api/journey.ts')
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')

// generating, compiling and a server on a small shared machine
t.setTimeout(240_000)

t.test('journey.ts names no cast', async (t) => {
  const source = (await readFile(JOURNEY, 'utf8')).replace(/\/\/.*$/gm, '')
  t.notMatch(source, /\bas\s+(?!const\b)[A-Za-z{[(]/, 'no `as` cast')
  t.notMatch(source, /<[A-Z]\w*>\s*[\w(]/, 'no angle-bracket cast')
  t.notMatch(source, /\w[\])]?!\./, 'no non-null assertion')
  t.notMatch(source, /\bany\b/, 'no any')
  t.notMatch(source, /@ts-(ignore|expect-error|nocheck)/, 'no suppressed error')
})

t.test('a @hey-api/openapi-ts client compiles strictly and does a first session against the server', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'annalist-hey-api-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await createClient({ input: join(ROOT, 'openapi.yaml'), output: { path: join(dir, 'generated') }, logs: { level: 'silent' } })
  await copyFile(JOURNEY, join(dir, 'journey.ts'))
  // the compiler finds @types/node where the project has it
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir')
  await writeFile(join(dir, 'package.json'), JSON.stringify({ type: 'module' }))
  await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, target: 'ES2022', lib: ['ES2022', 'DOM', 'DOM.Iterable'], module: 'NodeNext', moduleResolution: 'NodeNext', types: ['node'], outDir: 'out', rootDir: '.', skipLibCheck: false },
    include: ['journey.ts', 'generated/**/*.ts'],
  }))
  await mkdir(join(dir, 'out'))
  const compiled = await run(process.execPath, [TSC, '-p', dir], { cwd: dir }).then(() => '', (error: { stdout?: string }) => error.stdout ?? String(error))
  t.equal(compiled, '', 'tsc --strict compiles the generated client and journey.ts')
  if (compiled) return

  const db = await testDatabase(t)
  const server = await startServer(t, { DATABASE_URL: db.url! })
  const { stdout } = await run(process.execPath, [join(dir, 'out/journey.js')], { env: { ...process.env, ANNALIST_URL: server.url }, timeout: 120_000 })
  const seen = JSON.parse(stdout.trim().split('\n').pop()!)
  t.match(seen, {
    placed: 201,
    conflict: { status: 409, code: 'wrong-expected-version', currentVersion: 1 },
    types: ['1:OrderPlaced', '2:OrderShipped'],
    definedStatus: /^(running|catching-up|rebuilding)$/,
    documents: [{ id: 'order-7', document: { status: 'shipped', total: 42 } }],
    count: 1,
    progress: { processed: 2, total: 2, percent: 100 },
    final: 'completed',
  })
  t.equal(seen.progress.seen.at(-1), 'completed', 'the progress stream yielded parsed Backfill views up to completed')
})
