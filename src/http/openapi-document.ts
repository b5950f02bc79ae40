import { createHash } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

const candidates = [new URL('../../openapi.yaml', import.meta.url), new URL('../../../openapi.yaml', import.meta.url)]

// Parsing the 180 KB contract as YAML takes about half a second, a sixth of a start-up; its JSON, cached under
// node_modules/.cache keyed by the YAML's hash, parses in milliseconds. The cache is only a shortcut: an unreadable
// or unwritable one (a read-only image) falls back to parsing the YAML.
const cachePath = (yamlPath: string, text: string): string =>
  join(dirname(yamlPath), 'node_modules', '.cache', 'annalist', `openapi-${createHash('sha256').update(text).digest('hex').slice(0, 32)}.json`)

const readCached = async (path: string): Promise<Record<string, unknown> | undefined> => {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>
  } catch {
    return undefined
  }
}

const writeCached = async (path: string, document: Record<string, unknown>): Promise<void> => {
  try {
    await mkdir(dirname(path), { recursive: true })
    // written whole under another name first, so a concurrent start never reads half of it
    const partial = `${path}.${process.pid}.tmp`
    await writeFile(partial, JSON.stringify(document))
    await rename(partial, path)
  } catch {
    // no cache this time
  }
}

const parseContract = async (yamlPath: string, text: string): Promise<Record<string, unknown>> => {
  const cached = cachePath(yamlPath, text)
  const document = await readCached(cached)
  if (document) return document
  const parsed = parse(text) as Record<string, unknown>
  await writeCached(cached, parsed)
  return parsed
}

export const loadOpenapi = async (): Promise<Record<string, unknown>> => {
  for (const candidate of candidates) {
    const path = fileURLToPath(candidate)
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (error) {
      if ((error as { code?: string }).code === 'ENOENT') continue
      throw error
    }
    return parseContract(path, text)
  }
  throw new Error('openapi.yaml not found beside the project')
}
