import t from 'tap'
import { readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { parse } from 'yaml'
import { loadOpenapi } from '../../src/http/openapi-document.js'

const cacheDir = new URL('../../node_modules/.cache/annalist/', import.meta.url)
const cachedFiles = async (): Promise<string[]> => (await readdir(cacheDir).catch(() => [] as string[])).filter((name) => name.startsWith('openapi-'))

t.test('the contract loads the same from the YAML and from its cached JSON', async (t) => {
  const fromYaml = parse(await readFile(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as unknown
  const first = await loadOpenapi()
  t.same(first, fromYaml, 'a load that parsed the YAML (or read a cache of this very text)')
  const cached = await cachedFiles()
  t.ok(cached.length >= 1, 'the parsed contract is cached')
  t.same(await loadOpenapi(), fromYaml, 'a load from the cache')
})

t.test('a damaged cache falls back to the YAML and is written again', async (t) => {
  const fromYaml = parse(await readFile(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as unknown
  await loadOpenapi()
  const [name] = await cachedFiles()
  // every cache file of this text is named after its hash: damage them all, then load
  for (const file of await cachedFiles()) await writeFile(new URL(file, cacheDir), '{"truncat')
  t.same(await loadOpenapi(), fromYaml)
  t.same(JSON.parse(await readFile(new URL(name!, cacheDir), 'utf8')), fromYaml, 'the damaged file was replaced by the whole contract')
  t.teardown(() => rm(new URL(name!, cacheDir), { force: true }).then(() => undefined))
})
