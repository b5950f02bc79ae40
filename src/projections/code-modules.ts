import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { CodeProjection } from './types.js'

const MODULE_FILE = /\.(m?js|ts)$/

const isCodeProjection = (value: unknown): value is CodeProjection => {
  const candidate = value as Partial<CodeProjection> | undefined
  return (
    typeof candidate?.name === 'string' &&
    /^[a-z0-9][a-z0-9_-]{0,62}$/.test(candidate.name) &&
    typeof candidate.source === 'object' &&
    typeof candidate.handlers === 'object' &&
    Object.values(candidate.handlers ?? {}).every((handler) => typeof handler === 'function')
  )
}

// Modules in PROJECTIONS_DIR export `{name, source, handlers}` as their default export or as a named
// `projection` export. `.ts` files load only where a TypeScript loader is active (tsx, the tests).
export const loadCodeProjections = async (dir: string | undefined): Promise<CodeProjection[]> => {
  if (!dir) return []
  const files = (await readdir(dir)).filter((file) => MODULE_FILE.test(file) && !file.endsWith('.d.ts')).sort()
  const projections: CodeProjection[] = []
  for (const file of files) {
    const module = (await import(pathToFileURL(path.resolve(dir, file)).href)) as Record<string, unknown>
    const candidate = module.default ?? module.projection
    if (candidate === undefined) continue
    if (!isCodeProjection(candidate)) throw new Error(`${file}: a projection module exports {name, source, handlers}`)
    projections.push(candidate)
  }
  return projections
}
