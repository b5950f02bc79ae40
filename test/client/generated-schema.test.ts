import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

// client/schema.d.ts is committed; regenerating it with package.json's own `client:generate` command
// must give the same file, so a change to openapi.yaml without `npm run client:generate` fails here.
const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const COMMITTED = 'client/schema.d.ts'

t.test('the committed client/schema.d.ts is what openapi.yaml generates now', async (t) => {
  const scripts = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>
  const [command, ...args] = scripts['client:generate']!.split(' ')
  t.equal(command, 'openapi-typescript')
  t.ok(args.includes(COMMITTED), `the script writes ${COMMITTED}`)
  const dir = await mkdtemp(join(tmpdir(), 'annalist-client-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const fresh = join(dir, 'schema.d.ts')
  await run(join(ROOT, 'node_modules/.bin/openapi-typescript'), args.map((arg) => (arg === COMMITTED ? fresh : arg)), { cwd: ROOT })
  const committed = await readFile(join(ROOT, COMMITTED), 'utf8')
  t.ok(committed === (await readFile(fresh, 'utf8')), `${COMMITTED} is up to date with openapi.yaml (run npm run client:generate)`)
})
