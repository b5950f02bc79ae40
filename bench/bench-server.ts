import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { connect, withDatabase, type Sql } from '../src/db/connect.js'
import { startCpuMeter, type Usage } from './cpu-meter.js'
import { startDbWork } from './db-work.js'
import { REPO_ROOT, type BenchSettings } from './settings.js'

export interface BenchServer {
  origin: string
  pid: number
  databaseUrl: string
  admin: Sql
  describe: string
  meter: () => Promise<() => Promise<Usage>>
  stop: () => Promise<void>
}

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      const port = typeof address === 'object' && address ? address.port : 0
      probe.close(() => resolve(port))
    })
  })

const build = (root: string): void => {
  process.stderr.write(`bench: npm run build${root === REPO_ROOT ? '' : ` in ${root}`}\n`)
  const result = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit', timeout: 180_000 })
  if (result.status !== 0) throw new Error(`bench: npm run build failed (${result.error?.message ?? `exit ${result.status}`})`)
}

const recreateDatabase = async (admin: Sql, name: string): Promise<void> => {
  await admin`drop database if exists ${admin(name)} with (force)`
  await admin`create database ${admin(name)}`
}

const forward = (child: ChildProcess): void => {
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue
    createInterface({ input: stream }).on('line', (line) => process.stderr.write(`[server] ${line}\n`))
  }
}

const waitReady = async (origin: string, child: ChildProcess, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`bench: server exited during start-up (${child.exitCode ?? child.signalCode})`)
    const status = await request(`${origin}/health/ready`, { headersTimeout: 2000, bodyTimeout: 2000 })
      .then(async (response) => {
        await response.body.dump()
        return response.statusCode
      })
      .catch(() => 0)
    if (status === 200) return
    await sleep(100)
  }
  throw new Error(`bench: server not ready within ${timeoutMs / 1000} s`)
}

const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null

const terminate = async (child: ChildProcess): Promise<void> => {
  if (exited(child)) return
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  await gone
  clearTimeout(timer)
}

// The real server as a child process, on a database of its own, recreated empty for every run.
// It is killed when the bench ends, however it ends (the caller's finally, a signal, or process exit).
// `root`: the checkout whose server runs (bench/ab.ts runs another one beside this one)
export const startBenchServer = async (settings: BenchSettings, root = REPO_ROOT): Promise<BenchServer> => {
  if (settings.serverRunner === 'dist' && settings.build) build(root)
  const admin = connect(settings.adminUrl, { max: 1, applicationName: 'annalist-bench' })
  await recreateDatabase(admin, settings.database)
  // per-function call counts and times for the report; costs the server a clock read per call
  if (settings.trackFunctions) await admin`alter database ${admin(settings.database)} set track_functions = 'all'`
  const databaseUrl = withDatabase(settings.adminUrl, settings.database)
  // the embedded database lives inside the server process: no backends to meter, no statistics views to read from outside
  const dataDir = settings.embedded ? mkdtempSync(path.join(tmpdir(), 'annalist-bench-')) : undefined
  const stats = dataDir ? undefined : connect(databaseUrl, { max: 1, applicationName: 'annalist-bench' })
  const port = settings.port ?? (await freePort())
  const origin = `http://127.0.0.1:${port}`
  const nodeArgs: string[] = []
  if (settings.cpuProfileDir) {
    mkdirSync(settings.cpuProfileDir, { recursive: true })
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${settings.cpuProfileDir}`)
  }
  const entry = settings.serverRunner === 'tsx' ? ['--import=tsx', 'src/server.ts'] : [path.join('dist', 'src', 'server.js')]
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...(dataDir ? { DATA_DIR: dataDir } : { DATABASE_URL: databaseUrl }),
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    API_KEYS: '',
    NODE_ENV: 'production',
  }
  if (dataDir) delete env.DATABASE_URL
  if (settings.poolSize) env.DATABASE_POOL_SIZE = settings.poolSize
  const child = spawn(process.execPath, [...nodeArgs, ...entry], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  forward(child)
  let stopping = false
  const killOnExit = (): void => {
    if (!exited(child)) child.kill('SIGKILL')
  }
  process.once('exit', killOnExit)
  const stop = async (): Promise<void> => {
    if (stopping) return
    stopping = true
    await terminate(child)
    process.removeListener('exit', killOnExit)
    await stats?.end({ timeout: 5 })
    if (dataDir) rmSync(dataDir, { recursive: true, force: true })
    if (!settings.keepDatabase) await admin`drop database if exists ${admin(settings.database)} with (force)`.catch(() => {})
    await admin.end({ timeout: 5 })
  }
  try {
    await waitReady(origin, child, 60_000)
  } catch (error) {
    await stop()
    throw error
  }
  // from here on the server exiting by itself is a crash: report it and end the bench
  child.once('exit', (code, signal) => {
    if (stopping) return
    process.stderr.write(`bench: the server died mid-run (${code ?? signal}); stopping\n`)
    stopping = true
    setTimeout(() => process.exit(1), 5000).unref()
    const drop = settings.keepDatabase ? Promise.resolve() : admin`drop database if exists ${admin(settings.database)} with (force)`
    void drop.catch(() => {}).finally(() => process.exit(1))
  })
  const runner = settings.serverRunner === 'tsx' ? 'node --import=tsx src/server.ts' : 'node dist/src/server.js'
  const database = dataDir ? `embedded PGlite in ${dataDir}` : `database ${settings.database}`
  const describe = `${runner}, pid ${child.pid}, ${origin}, ${database}, pool ${settings.poolSize ?? 'default (20)'}, LOG_LEVEL=warn`
  const pid = child.pid ?? 0
  const meter = async (): Promise<() => Promise<Usage>> => {
    const backends = dataDir ? [] : await admin<{ pid: number }[]>`select pid from pg_stat_activity where datname = ${settings.database} and application_name = 'annalist'`
    const stopDb = stats ? await startDbWork(stats).catch(() => undefined) : undefined
    const stopCpu = startCpuMeter(pid, backends.map((row) => row.pid))
    return async () => ({ cpu: stopCpu(), db: await stopDb?.().catch(() => undefined) })
  }
  return { origin, pid, databaseUrl, admin, describe, meter, stop }
}

// Runs fn against a fresh server and always stops it: on return, on throw, on SIGINT/SIGTERM, and when the
// time budget runs out (then the bench exits 1 rather than hang).
// `root`: the checkout whose server runs, as for startBenchServer
export const withBenchServer = async <T>(settings: BenchSettings, budgetSeconds: number, fn: (server: BenchServer) => Promise<T>, root = REPO_ROOT): Promise<T> => {
  const server = await startBenchServer(settings, root)
  const bail = (why: string): void => {
    process.stderr.write(`bench: ${why}; stopping the server\n`)
    void server.stop().finally(() => process.exit(1))
    setTimeout(() => process.exit(1), 20_000).unref()
  }
  const onSignal = (signal: NodeJS.Signals): void => bail(`got ${signal}`)
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const watchdog = setTimeout(() => bail(`time budget of ${Math.round(budgetSeconds)} s exceeded`), budgetSeconds * 1000)
  watchdog.unref()
  try {
    return await fn(server)
  } finally {
    clearTimeout(watchdog)
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
    await server.stop()
  }
}
