import { cloneExact, JsonNumber } from '../../events/exact-json.js'
import type { Document } from '../types.js'

// `$.data.total` → ['data', 'total']; only whole strings starting with `$.` are paths (SPEC "Details").
export const isEventPath = (value: unknown): value is string => typeof value === 'string' && value.startsWith('$.')

// SPEC "Details": field names in definitions may not hold these (refused at definition time, definition-schema.ts).
// The walks below read and write own properties only, so even a document key spelled so stays plain data.
export const FORBIDDEN_SEGMENTS = ['__proto__', 'constructor', 'prototype']

// A field or an event path split once, when a definition's handler is first run (declarative.ts), not per event.
export type Segments = readonly string[]

export const splitField = (field: string): Segments => field.split('.')

export const splitEventPath = (path: string): Segments => path.slice(2).split('.')

const hasOwn = (value: unknown, key: string): boolean => typeof value === 'object' && value !== null && Object.hasOwn(value, key)

// What puts a document back as it was before the ops of one event, newest last, four slots a change (target, key,
// whether it was there, the value before): a handler's ops change the document in place (no copy per event), so a
// failing one must take back those that ran. Flat slots rather than a closure per op: ops run for every event.
export type Undo = unknown[]

const LENGTH = Symbol('array length')

export const undoAll = (undo: Undo): void => {
  for (let at = undo.length - 4; at >= 0; at -= 4) {
    const target = undo[at] as Record<string, unknown>
    const key = undo[at + 1] as string | typeof LENGTH
    if (key === LENGTH) (target as unknown as unknown[]).length = undo[at + 3] as number
    else if (undo[at + 2] === true) defineOwn(target, key, undo[at + 3])
    else delete target[key]
  }
  undo.length = 0
}

const remember = (target: Record<string, unknown>, key: string, undo: Undo | undefined): void => {
  if (!undo) return
  const had = Object.hasOwn(target, key)
  undo.push(target, key, had, had ? target[key] : undefined)
}

// An own, plain data property, whatever the key: `__proto__` included, no setter reached. Documents and the objects
// in them are plain objects (JSON.parse, cloneExact, `{}`), whose prototype's only setter is `__proto__`, and their
// own properties are plain data, so any other key is written by assignment with the same effect, and faster.
export const defineOwn = (target: object, key: string, value: unknown, undo?: Undo): void => {
  remember(target as Record<string, unknown>, key, undo)
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
  else (target as Record<string, unknown>)[key] = value
}

export const pushOnto = (array: unknown[], value: unknown, undo: Undo): void => {
  undo.push(array, LENGTH, true, array.length)
  array.push(value)
}

export const MISSING = Symbol('missing')

export const resolvePath = (root: unknown, path: Segments): unknown => {
  let current = root
  for (let at = 0; at < path.length; at++) {
    const key = path[at]!
    if (!hasOwn(current, key)) return MISSING
    current = (current as Record<string, unknown>)[key]
  }
  return current
}

// A value from the definition: a path into the event, or a literal, copied so no document shares it
// (documents change in place: two fields holding one object would change together).
export const valueOf = (event: unknown, value: { path: Segments } | { literal: unknown }): unknown => {
  const found = 'path' in value ? resolvePath(event, value.path) : value.literal
  return found === MISSING ? MISSING : cloneExact(found)
}

export const getField = (document: Document, field: Segments): unknown => {
  const found = resolvePath(document, field)
  return found === MISSING ? undefined : found
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof JsonNumber)

const ownObject = (parent: Record<string, unknown>, key: string): Record<string, unknown> | undefined => {
  const value = Object.hasOwn(parent, key) ? parent[key] : undefined
  return isObject(value) ? value : undefined
}

export const setField = (document: Document, field: Segments, value: unknown, undo?: Undo): void => {
  let current: Record<string, unknown> = document
  const last = field.length - 1
  for (let at = 0; at < last; at++) {
    const key = field[at]!
    let next = ownObject(current, key)
    if (!next) {
      next = {}
      defineOwn(current, key, next, undo)
    }
    current = next
  }
  defineOwn(current, field[last]!, value, undo)
}

export const unsetField = (document: Document, field: Segments, undo?: Undo): void => {
  let current: Record<string, unknown> | undefined = document
  const last = field.length - 1
  for (let at = 0; at < last; at++) {
    current = ownObject(current, field[at]!)
    if (!current) return
  }
  const key = field[last]!
  if (!Object.hasOwn(current, key)) return
  remember(current, key, undo)
  delete current[key]
}
