import { spawn } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { waitFor } from '../helpers/wait-for.js'

// README's first command, as a new user runs it: the real `npm start` on the embedded database, in a copy of the
// project (so its dist/ starts empty and no other test's build is touched). The first start compiles; the
// second must not, and answers /health/ready within READY_MS of being started. On a machine so busy that
// the compiled server alone (`node dist/src/server.js`, measured here too) takes longer, npm start may take
// at most SLOWER times as long as that: what is measured is what `npm start` adds.
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const READY_MS = 3000
const SLOWER = 1.5
const PROJECT = ['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'routes', 'sql', 'public', 'openapi.yaml', 'scripts']

// a first tsc of the whole project on a shared 2-core machine takes up to a minute
t.setTimeout(360_000)

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
    probe.on('error', reject)
  })

interface Started {
  stdout: () => string
  stderr: () => string
  readyAfterMs: number
  // SIGTERM to npm, sh and the server, as Ctrl-C signals a terminal's whole group; resolves once all are gone
  stop: () => Promise<void>
}

const start = async (t: Test, command: string[], cwd: string, env: Record<string, string>, readyWithinMs: number): Promise<Started> => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const began = performance.now()
  // its own process group (npm → sh → node), so the whole of it is stopped by this id
  const child = spawn(command[0]!, command.slice(1), { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? cwd, HOST: '127.0.0.1', PORT: String(port), ...env } })
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk))
  const kill = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal)
    } catch {
      // already gone
    }
  }
  t.teardown(() => kill('SIGKILL'))
  await waitFor(`${url}/health/ready`, async () => {
    if (child.exitCode !== null) throw new Error(`${command.join(' ')} exited ${child.exitCode}: ${err}`)
    const response = await fetch(`${url}/health/ready`).catch(() => undefined)
    return response?.status === 200
  }, { timeoutMs: readyWithinMs, intervalMs: 20 })
  const readyAfterMs = performance.now() - began
  return {
    stdout: () => out,
    stderr: () => err,
    readyAfterMs,
    stop: async () => {
      kill('SIGTERM')
      await waitFor('the process group to end', () => {
        try {
          process.kill(-child.pid!, 0)
          return false
        } catch {
          return true
        }
      }, { timeoutMs: 30_000, intervalMs: 20 })
    },
  }
}

const npmStart = (t: Test, cwd: string, env: Record<string, string>, readyWithinMs: number) => start(t, ['npm', 'start'], cwd, env, readyWithinMs)

const jsonLines = (text: string): Record<string, unknown>[] =>
  text.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>)

t.test('npm start compiles once; the next start is ready within 3 s and says where everything is', async (t) => {
  const project = mkdtempSync(path.join(tmpdir(), 'annalist-start-'))
  t.teardown(() => rmSync(project, { recursive: true, force: true }))
  for (const file of PROJECT) cpSync(path.join(ROOT, file), path.join(project, file), { recursive: true })
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(project, 'node_modules'))
  const dataDir = path.join(project, 'data')
  const env = { DATA_DIR: dataDir }

  const first = await npmStart(t, project, env, 240_000)
  t.match(first.stderr(), /compiling \(tsc\)/, 'the first start compiles the sources')
  const lines = jsonLines(first.stdout())
  t.ok(lines.length > 0 && !/\x1b\[/.test(first.stdout()), 'stdout is not a terminal: JSON lines, no colours')
  const messages = lines.map((line) => String(line.msg))
  t.ok(messages.includes(`database: embedded PostgreSQL (PGlite), data in ${dataDir}`), 'the database is named in words')
  t.ok(messages.some((message) => /^migrations: applied \d+ migrations to a new database, the schema is now up to date \(\d{4}\)$/.test(message)), 'the migrations are told in words')
  const base = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(first.stdout())?.[1]
  t.ok(messages.includes(`ready: API ${base} · API reference ${base}/docs · dashboard ${base}/`), 'the URLs of the API, /docs and the dashboard')
  await first.stop()
  t.ok(jsonLines(first.stdout()).some((line) => line.msg === 'closed'), 'SIGTERM drains and closes')
  const built = statSync(path.join(project, 'dist/src/server.js')).mtimeMs

  const direct = await start(t, [process.execPath, 'dist/src/server.js'], project, env, 60_000)
  await direct.stop()
  const second = await npmStart(t, project, env, 60_000)
  t.notMatch(second.stderr(), /compiling/, 'nothing changed: no compile')
  t.equal(statSync(path.join(project, 'dist/src/server.js')).mtimeMs, built, 'dist/ was not rewritten')
  t.ok(jsonLines(second.stdout()).some((line) => /^migrations: the schema was already up to date \(\d{4}\)$/.test(String(line.msg))), 'the migrations say nothing was to do')
  await second.stop()

  const pretty = await npmStart(t, project, { ...env, LOG_FORMAT: 'pretty' }, 60_000)
  await waitFor('the ready line', () => pretty.stdout().includes('ready: API http://127.0.0.1:'), { timeoutMs: 10_000 })
  t.equal(jsonLines(pretty.stdout()).length, 0, 'LOG_FORMAT=pretty: no JSON lines')
  t.match(pretty.stdout(), /INFO.*database: embedded PostgreSQL \(PGlite\)/, 'readable lines with their level')
  t.notMatch(pretty.stdout(), /startUp/, 'the start-up fields are said once, in words')
  await pretty.stop()
  t.match(pretty.stdout(), /INFO.*closed/)

  const npm = Math.min(second.readyAfterMs, pretty.readyAfterMs)
  const bound = Math.max(READY_MS, SLOWER * direct.readyAfterMs)
  t.comment(`ready after: node dist/src/server.js ${Math.round(direct.readyAfterMs)} ms; npm start ${Math.round(second.readyAfterMs)} ms, with LOG_FORMAT=pretty ${Math.round(pretty.readyAfterMs)} ms`)
  t.ok(npm <= bound, `npm start is ready ${Math.round(npm)} ms after it is run (at most ${Math.round(bound)})`)
})
