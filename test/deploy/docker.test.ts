import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { waitFor } from '../helpers/wait-for.js'

// No Docker engine runs here: the files are checked for what they promise, and the image's start and
// health commands are run directly on a folder laid out as the runtime stage's COPY lines lay it out.
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

interface Instruction {
  keyword: string
  args: string
}

const dockerfile = (): Instruction[][] => {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ')
  const stages: Instruction[][] = []
  for (const line of text.split('\n').map((raw) => raw.trim())) {
    if (!line || line.startsWith('#')) continue
    const [keyword, ...rest] = line.split(/\s+/)
    const instruction = { keyword: keyword!.toUpperCase(), args: rest.join(' ') }
    if (instruction.keyword === 'FROM') stages.push([])
    stages.at(-1)?.push(instruction)
  }
  return stages
}

const execForm = (args: string): string[] => JSON.parse(args.replace(/^CMD\s+/, '')) as string[]

t.test('the Dockerfile builds in one stage and runs from a slim one, as a non-root user, with a readiness health check', async (t) => {
  const stages = dockerfile()
  t.ok(stages.length >= 2, 'multi-stage')
  const runtime = stages.at(-1)!
  const all = (keyword: string) => runtime.filter((instruction) => instruction.keyword === keyword)
  t.match(stages[0]![0]!.args, /\bAS build$/, 'the first stage is the build stage')
  t.notOk(runtime.some((instruction) => /npm (ci|install)|tsc|npm run build/.test(instruction.args)), 'nothing is built or installed at run time')

  const user = all('USER').at(-1)?.args
  t.ok(user && !['root', '0'].includes(user), `runs as ${user}`)

  // only what the server needs at run time: compiled code, production modules, migrations, the contract, the dashboard page
  const copied = all('COPY').flatMap(({ args }) => args.split(/\s+/).filter((word) => !word.startsWith('--')).slice(0, -1))
  t.same(copied.sort(), ['/app/dist', '/app/node_modules', 'openapi.yaml', 'package.json', 'public', 'sql'])
  t.ok(all('COPY').every(({ args }) => args.includes('--chown=node:node') || !args.includes('--from')), 'copied files belong to the runtime user')

  const health = all('HEALTHCHECK').at(-1)?.args ?? ''
  t.match(health, /^--interval=\S+ --timeout=\S+ --start-period=\S+ --retries=\d+ CMD \[/, 'HEALTHCHECK [OPTIONS] CMD ["exec", "form"]')
  t.match(health, '/health/ready')
  t.same(execForm(all('CMD').at(-1)!.args), ['node', 'dist/src/server.js'], 'CMD in exec form, so node gets SIGTERM')
  t.match(Object.fromEntries(all('ENV').flatMap(({ args }) => args.split(/\s+/).map((pair) => pair.split('=')))), { HOST: '0.0.0.0', DATA_DIR: '/data' })
  t.same(all('VOLUME').map(({ args }) => args), ['["/data"]'], 'the embedded database folder is a volume')
})

t.test('docker-compose.yml: PostgreSQL with a named volume and a health check, the server started once it is healthy', async (t) => {
  const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'))
  t.same(Object.keys(compose.services).sort(), ['annalist', 'postgres'])
  const { postgres, annalist } = compose.services
  t.match(postgres.image, /^postgres:\d+$/, 'a pinned major version')
  t.same(postgres.volumes, ['pgdata:/var/lib/postgresql/data'])
  t.ok('pgdata' in compose.volumes, 'pgdata is a named volume')
  t.match(postgres.healthcheck.test, ['CMD-SHELL', /^pg_isready /])

  t.same(annalist.depends_on, { postgres: { condition: 'service_healthy' } })
  t.equal(annalist.build, '.')
  t.equal(annalist.environment.HOST, '0.0.0.0')
  const url = new URL(annalist.environment.DATABASE_URL)
  const { POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB } = postgres.environment
  t.same([url.hostname, url.username, url.password, url.pathname], ['postgres', POSTGRES_USER, POSTGRES_PASSWORD, `/${POSTGRES_DB}`], 'DATABASE_URL reaches the postgres service')
  t.same(annalist.volumes, [`./projections:${annalist.environment.PROJECTIONS_DIR}:ro`], 'PROJECTIONS_DIR is ./projections, mounted')
  t.same(annalist.ports, [`${annalist.environment.PORT}:${annalist.environment.PORT}`])
})

t.test("the image's start command serves on the runtime files alone, and its health check passes", { timeout: 300_000 }, async (t) => {
  const app = mkdtempSync(path.join(tmpdir(), 'annalist-image-'))
  t.teardown(() => rmSync(app, { recursive: true, force: true }))
  const build = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--outDir', path.join(app, 'dist')], {
    cwd: ROOT,
    encoding: 'utf8',
  })
  t.equal(build.status, 0, `npm run build's tsc: ${build.stdout}${build.stderr}`)
  for (const file of ['package.json', 'openapi.yaml', 'sql', 'public']) cpSync(path.join(ROOT, file), path.join(app, file), { recursive: true })
  // the repository's modules hold dev dependencies too: this checks the layout, not the prune
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(app, 'node_modules'))

  const stages = dockerfile()
  const runtime = stages.at(-1)!
  const [command, ...args] = execForm(runtime.find((instruction) => instruction.keyword === 'CMD')!.args)
  const env = { PATH: process.env.PATH ?? '', NODE_ENV: 'production', HOST: '127.0.0.1', PORT: '0', DATA_DIR: path.join(app, 'data'), LOG_LEVEL: 'info' }
  const server = spawn(command === 'node' ? process.execPath : command!, args, { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => void server.kill('SIGKILL'))
  let out = ''
  server.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
  server.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
  const port = await waitFor('the server to listen', () => /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1] ?? (server.exitCode !== null ? 'exited' : undefined), {
    timeoutMs: 120_000,
  })
  t.not(port, 'exited', out)

  const health = runtime.find((instruction) => instruction.keyword === 'HEALTHCHECK')!.args
  const [checkCommand, ...checkArgs] = execForm(health.slice(health.indexOf('CMD ')))
  const check = spawnSync(checkCommand === 'node' ? process.execPath : checkCommand!, checkArgs, { env: { ...env, PORT: port }, encoding: 'utf8', timeout: 10_000 })
  t.equal(check.status, 0, 'the HEALTHCHECK command exits 0 against the running server')

  server.kill('SIGTERM')
  const code = await new Promise((resolve) => (server.exitCode !== null ? resolve(server.exitCode) : server.once('exit', resolve)))
  t.equal(code, 0, 'SIGTERM drains and exits 0')
  const failing = spawnSync(checkCommand === 'node' ? process.execPath : checkCommand!, checkArgs, { env: { ...env, PORT: port }, encoding: 'utf8', timeout: 10_000 })
  t.equal(failing.status, 1, 'and the check fails once the server is gone')
})
