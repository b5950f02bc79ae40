import type { Document } from './types.js'

// `$.data.total` → ['data', 'total']; only whole strings starting with `$.` are paths (SPEC "Details").
export const isEventPath = (value: unknown): value is string => typeof value === 'string' && value.startsWith('$.')

export const splitField = (field: string): string[] => field.split('.')

const hasOwn = (value: unknown, key: string): boolean =>
  typeof value === 'object' && value !== null && Object.prototype.hasOwnProperty.call(value, key)

export const MISSING = Symbol('missing')

export const resolvePath = (root: unknown, path: string): unknown => {
  let current = root
  for (const key of path.slice(2).split('.')) {
    if (!hasOwn(current, key)) return MISSING
    current = (current as Record<string, unknown>)[key]
  }
  return current
}

// A value from the definition: a `$.` path into the event, or a literal taken as it is.
export const valueOf = (event: unknown, value: unknown): unknown => (isEventPath(value) ? resolvePath(event, value) : value)

export const getField = (document: Document, field: string): unknown => {
  let current: unknown = document
  for (const key of splitField(field)) {
    if (!hasOwn(current, key)) return undefined
    current = (current as Record<string, unknown>)[key]
  }
  return current
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

export const setField = (document: Document, field: string, value: unknown): void => {
  const keys = splitField(field)
  let current: Record<string, unknown> = document
  for (const key of keys.slice(0, -1)) {
    if (!isObject(current[key])) current[key] = {}
    current = current[key] as Record<string, unknown>
  }
  current[keys.at(-1)!] = value
}

export const unsetField = (document: Document, field: string): void => {
  const keys = splitField(field)
  let current: unknown = document
  for (const key of keys.slice(0, -1)) {
    if (!isObject(current) || !isObject(current[key])) return
    current = current[key]
  }
  if (isObject(current)) delete current[keys.at(-1)!]
}
