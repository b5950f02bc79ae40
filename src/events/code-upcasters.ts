import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { EVENT_TYPE_PATTERN } from './schemas.js'
import type { CodeUpcaster, CodeUpcasters } from './upcaster-types.js'

const MODULE_FILE = /\.(m?js|ts)$/
const EVENT_TYPE = new RegExp(EVENT_TYPE_PATTERN)

const isStepTable = (value: unknown): value is Record<string, CodeUpcaster> =>
  typeof value === 'object' &&
  value !== null &&
  Object.entries(value).every(([from, step]) => /^[1-9]\d{0,8}$/.test(from) && typeof step === 'function')

// Modules in PROJECTIONS_DIR may export `upcasters: { [type]: { [fromVersion]: (data, event) => newData } }`
// (src/events/upcaster-types.ts), beside or instead of a projection. Several modules may add steps to one type;
// the same step twice is a start-up error, not a silent override. Tables without a prototype, read by own keys
// only: a type called toString or constructor is a type like any other (SPEC "Details").
export const loadCodeUpcasters = async (dir: string | undefined): Promise<CodeUpcasters> => {
  const upcasters: CodeUpcasters = Object.create(null) as CodeUpcasters
  if (!dir) return upcasters
  const files = (await readdir(dir)).filter((file) => MODULE_FILE.test(file) && !file.endsWith('.d.ts')).sort()
  for (const file of files) {
    const module = (await import(pathToFileURL(path.resolve(dir, file)).href)) as { upcasters?: unknown }
    if (module.upcasters === undefined) continue
    if (typeof module.upcasters !== 'object' || module.upcasters === null) throw new Error(`${file}: upcasters must be { [type]: { [fromVersion]: function } }`)
    for (const [type, steps] of Object.entries(module.upcasters)) {
      if (!EVENT_TYPE.test(type) || !isStepTable(steps)) throw new Error(`${file}: upcasters.${type} must be { [fromVersion ≥ 1]: (data, event) => data }`)
      if (!Object.hasOwn(upcasters, type)) upcasters[type] = Object.create(null) as Record<number, CodeUpcaster>
      const table = upcasters[type]!
      for (const [from, step] of Object.entries(steps)) {
        if (Object.hasOwn(table, from)) throw new Error(`${file}: upcasters.${type}[${from}] is defined by another module too`)
        table[Number(from)] = step
      }
    }
  }
  return upcasters
}
