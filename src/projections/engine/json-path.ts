import { cloneExact, JsonNumber } from '../../events/exact-json.js'
import type { Document } from '../types.js'

// `$.data.total` → ['data', 'total']; only whole strings starting with `$.` are paths (SPEC "Details").
export const isEventPath = (value: unknown): value is string => typeof value === 'string' && value.startsWith('$.')

// SPEC "Details": field names in definitions may not hold these (refused at definition time, definition-schema.ts).
// The walks below read and write own properties only, so even a document key spelled so stays plain data.
export const FORBIDDEN_SEGMENTS = ['__proto__', 'constructor', 'prototype']

export const splitField = (field: string): string[] => field.split('.')

const hasOwn = (value: unknown, key: string): boolean => typeof value === 'object' && value !== null && Object.hasOwn(value, key)

// An own, plain data property, whatever the key: `__proto__` included, no setter reached.
export const defineOwn = (target: object, key: string, value: unknown): void => {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
}

export const MISSING = Symbol('missing')

export const resolvePath = (root: unknown, path: string): unknown => {
  let current = root
  for (const key of path.slice(2).split('.')) {
    if (!hasOwn(current, key)) return MISSING
    current = (current as Record<string, unknown>)[key]
  }
  return current
}

// A value from the definition: a `$.` path into the event, or a literal, copied so no document shares it.
export const valueOf = (event: unknown, value: unknown): unknown => (isEventPath(value) ? resolvePath(event, value) : cloneExact(value))

export const getField = (document: Document, field: string): unknown => {
  let current: unknown = document
  for (const key of splitField(field)) {
    if (!hasOwn(current, key)) return undefined
    current = (current as Record<string, unknown>)[key]
  }
  return current
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof JsonNumber)

const ownObject = (parent: Record<string, unknown>, key: string): Record<string, unknown> | undefined => {
  const value = Object.hasOwn(parent, key) ? parent[key] : undefined
  return isObject(value) ? value : undefined
}

export const setField = (document: Document, field: string, value: unknown): void => {
  const keys = splitField(field)
  let current: Record<string, unknown> = document
  for (const key of keys.slice(0, -1)) {
    let next = ownObject(current, key)
    if (!next) {
      next = {}
      defineOwn(current, key, next)
    }
    current = next
  }
  defineOwn(current, keys.at(-1)!, value)
}

export const unsetField = (document: Document, field: string): void => {
  const keys = splitField(field)
  let current: Record<string, unknown> | undefined = document
  for (const key of keys.slice(0, -1)) {
    current = ownObject(current, key)
    if (!current) return
  }
  const last = keys.at(-1)!
  if (Object.hasOwn(current, last)) delete current[last]
}
