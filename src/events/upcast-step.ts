import { Problem } from '../problems.js'
import { JsonNumber } from './exact-json.js'
import type { UpcasterStep } from './upcaster-types.js'

const SEGMENT = /^[A-Za-z0-9_$@-]{1,128}$/
const FORBIDDEN = new Set(['__proto__', 'prototype', 'constructor'])
const MAX_DEPTH = 16

type Json = Record<string, unknown>

// a JsonNumber is a value, not an object with fields
const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof JsonNumber)

export const isFieldPath = (path: string): boolean => {
  const segments = path.split('.')
  return segments.length <= MAX_DEPTH && segments.every((segment) => SEGMENT.test(segment) && !FORBIDDEN.has(segment))
}

// The part of a definition that a schema cannot say: steps contiguous from → from + 1, and field names that are paths.
export const checkSteps = (steps: UpcasterStep[]): void => {
  steps.forEach((step, index) => {
    const at = `steps[${index}]`
    if (step.to !== step.from + 1) throw new Problem('validation-failed', {}, `${at}.to must be ${step.from + 1} (from + 1)`)
    const previous = steps[index - 1]
    if (previous && step.from !== previous.to) throw new Problem('validation-failed', {}, `${at}.from must be ${previous.to}: steps are contiguous and in order`)
    const fields: [string, string][] = [
      ...Object.entries(step.rename ?? {}).flatMap(([old, renamed]): [string, string][] => [[`${at}.rename`, old], [`${at}.rename.${old}`, renamed]]),
      ...Object.keys(step.defaults ?? {}).map((field): [string, string] => [`${at}.defaults`, field]),
      ...(step.remove ?? []).map((field): [string, string] => [`${at}.remove`, field]),
    ]
    for (const [where, field] of fields) {
      if (!isFieldPath(field)) throw new Problem('validation-failed', {}, `${where}: "${field}" is not a field name (dot-separated segments of [A-Za-z0-9_$@-])`)
    }
  })
}

const parentOf = (root: Json, path: string[], create: boolean): Json | undefined => {
  let node = root
  for (const segment of path.slice(0, -1)) {
    if (!Object.hasOwn(node, segment) || !isObject(node[segment])) {
      if (!create || Object.hasOwn(node, segment)) return undefined
      node[segment] = {}
    }
    node = node[segment] as Json
  }
  return node
}

const take = (root: Json, path: string): { found: boolean; value?: unknown } => {
  const segments = path.split('.')
  const parent = parentOf(root, segments, false)
  const last = segments.at(-1)!
  if (!parent || !Object.hasOwn(parent, last)) return { found: false }
  const value = parent[last]
  delete parent[last]
  return { found: true, value }
}

const put = (root: Json, path: string, value: unknown, onlyIfMissing: boolean): void => {
  const segments = path.split('.')
  const parent = parentOf(root, segments, true)
  const last = segments.at(-1)!
  if (!parent || (onlyIfMissing && Object.hasOwn(parent, last))) return
  parent[last] = value
}

// Applies one declarative step to a copy of `data` the caller owns. Data that is not an object has no fields:
// it passes through unchanged.
export const applyStep = (data: unknown, step: UpcasterStep): unknown => {
  if (!isObject(data)) return data
  for (const [old, renamed] of Object.entries(step.rename ?? {})) {
    const moved = take(data, old)
    if (moved.found) put(data, renamed, moved.value, false)
  }
  for (const field of step.remove ?? []) take(data, field)
  for (const [field, value] of Object.entries(step.defaults ?? {})) put(data, field, structuredClone(value), true)
  return data
}
