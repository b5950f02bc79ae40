import { cloneExact, JsonNumber } from '../../events/exact-json.js'
import type { Document } from '../types.js'

// `$.data.total` → ['data', 'total']; only whole strings starting with `$.` are paths (SPEC "Details").
export const isEventPath = (value: unknown): value is string => typeof value === 'string' && value.startsWith('$.')

// SPEC "Details": field names in definitions may not hold these (refused at definition time, definition-schema.ts).
// The walks below read and write own properties only, so even a document key spelled so stays plain data.
export const FORBIDDEN_SEGMENTS = ['__proto__', 'constructor', 'prototype']

export const splitField = (field: string): string[] => field.split('.')

const hasOwn = (value: unknown, key: string): boolean => typeof value === 'object' && value !== null && Object.hasOwn(value, key)

// What puts a document back as it was before the ops of one event, newest first: a handler's ops change
// the document in place (no copy per event), so a failing one must take back those that ran.
export type Undo = (() => void)[]

export const undoAll = (undo: Undo): void => {
  for (let step = undo.pop(); step; step = undo.pop()) step()
}

const remember = (target: Record<string, unknown>, key: string, undo: Undo | undefined): void => {
  if (!undo) return
  if (Object.hasOwn(target, key)) {
    const before = target[key]
    undo.push(() => defineOwn(target, key, before))
  } else {
    undo.push(() => delete target[key])
  }
}

// An own, plain data property, whatever the key: `__proto__` included, no setter reached.
export const defineOwn = (target: object, key: string, value: unknown, undo?: Undo): void => {
  remember(target as Record<string, unknown>, key, undo)
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

// A value from the definition: a `$.` path into the event, or a literal, copied so no document shares it
// (documents change in place: two fields holding one object would change together).
export const valueOf = (event: unknown, value: unknown): unknown => {
  const found = isEventPath(value) ? resolvePath(event, value) : value
  return found === MISSING ? MISSING : cloneExact(found)
}

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

export const setField = (document: Document, field: string, value: unknown, undo?: Undo): void => {
  const keys = splitField(field)
  let current: Record<string, unknown> = document
  for (const key of keys.slice(0, -1)) {
    let next = ownObject(current, key)
    if (!next) {
      next = {}
      defineOwn(current, key, next, undo)
    }
    current = next
  }
  defineOwn(current, keys.at(-1)!, value, undo)
}

export const unsetField = (document: Document, field: string, undo?: Undo): void => {
  const keys = splitField(field)
  let current: Record<string, unknown> | undefined = document
  for (const key of keys.slice(0, -1)) {
    current = ownObject(current, key)
    if (!current) return
  }
  const last = keys.at(-1)!
  if (!Object.hasOwn(current, last)) return
  remember(current, last, undo)
  delete current[last]
}
