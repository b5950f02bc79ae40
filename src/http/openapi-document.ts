import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

const candidates = [new URL('../../openapi.yaml', import.meta.url), new URL('../../../openapi.yaml', import.meta.url)]

export const loadOpenapi = async (): Promise<Record<string, unknown>> => {
  for (const candidate of candidates) {
    try {
      return parse(await readFile(fileURLToPath(candidate), 'utf8')) as Record<string, unknown>
    } catch (error) {
      if ((error as { code?: string }).code !== 'ENOENT') throw error
    }
  }
  throw new Error('openapi.yaml not found beside the project')
}
