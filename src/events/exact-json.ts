import { randomBytes } from 'node:crypto'

// A JSON number a double cannot give back as written: an integer beyond 2^53, one beyond double range, a
// long decimal, or just `1.0` or `-0`. Declarative projections carry it as its text, so the documents they
// write hold the number exactly as the event did (SPEC "Details"); Number() or `+` still read its value.
export class JsonNumber {
  constructor(readonly text: string) {}

  valueOf(): number {
    return Number(this.text)
  }

  // stringifyExact() swaps the marked string back for the number text
  toJSON(): string {
    return MARK + this.text
  }
}

// Nothing a document can hold starts with NUL (jsonb refuses it, and so do appends), and the nonce is the process's own.
const MARK = `\u0000${randomBytes(6).toString('hex')}:`
const MARKED = new RegExp(`"\\\\u0000${MARK.slice(1)}([-+.0-9eE]+)"`, 'g')
const MARKED_TEXT = `"\\u0000${MARK.slice(1)}`

const QUOTE = 34
const BACKSLASH = 92
const MINUS = 45
const isNumberStart = (code: number): boolean => code === MINUS || (code >= 48 && code <= 57)
const isDelimiter = (code: number): boolean =>
  code === 44 || code === 93 || code === 125 || code === 32 || code === 10 || code === 13 || code === 9

// The spans of the numbers whose text String(Number(text)) would not give back; strings are skipped whole.
const inexactNumbers = (text: string): [number, number][] => {
  const spans: [number, number][] = []
  for (let at = 0; at < text.length; at++) {
    const code = text.charCodeAt(at)
    if (code === QUOTE) {
      let end = text.indexOf('"', at + 1)
      while (end !== -1) {
        let slashes = 0
        while (text.charCodeAt(end - 1 - slashes) === BACKSLASH) slashes++
        if (slashes % 2 === 0) break
        end = text.indexOf('"', end + 1)
      }
      if (end === -1) return spans
      at = end
    } else if (isNumberStart(code)) {
      let end = at + 1
      while (end < text.length && !isDelimiter(text.charCodeAt(end))) end++
      const number = text.slice(at, end)
      if (String(Number(number)) !== number) spans.push([at, end])
      at = end - 1
    }
  }
  return spans
}

const revive = (value: unknown): unknown => {
  if (typeof value === 'string') return value.startsWith(MARK) ? new JsonNumber(value.slice(MARK.length)) : value
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) value[index] = revive(value[index])
  } else if (typeof value === 'object' && value !== null) {
    const object = value as Record<string, unknown>
    for (const key of Object.keys(object)) object[key] = revive(object[key])
  }
  return value
}

// JSON text (as stored: valid, depth-bounded) to values, with every number a double cannot keep as a
// JsonNumber. Text whose numbers are all plain, the usual case, is one JSON.parse.
export const parseExact = (text: string): unknown => {
  const spans = inexactNumbers(text)
  if (spans.length === 0) return JSON.parse(text)
  let marked = ''
  let from = 0
  for (const [start, end] of spans) {
    marked += `${text.slice(from, start)}"${MARK.replace('\u0000', '\\u0000')}${text.slice(start, end)}"`
    from = end
  }
  return revive(JSON.parse(marked + text.slice(from)))
}

// JSON.stringify, with every JsonNumber written as its text.
export const stringifyExact = (value: unknown): string => {
  const text = JSON.stringify(value)
  return text.includes(MARKED_TEXT) ? text.replace(MARKED, '$1') : text
}

// A deep copy that keeps JsonNumbers (structuredClone would turn them into plain objects).
export const cloneExact = <T>(value: T): T => {
  if (typeof value !== 'object' || value === null || value instanceof JsonNumber) return value
  if (Array.isArray(value)) return value.map(cloneExact) as T
  const copy: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    Object.defineProperty(copy, key, { value: cloneExact((value as Record<string, unknown>)[key]), enumerable: true, writable: true, configurable: true })
  }
  return copy as T
}

// Plain values again (numbers as doubles), for code that was promised plain JS values.
export const toPlain = <T>(value: T): T => {
  if (value instanceof JsonNumber) return value.valueOf() as T
  if (typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) return value.map(toPlain) as T
  const copy: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    Object.defineProperty(copy, key, { value: toPlain((value as Record<string, unknown>)[key]), enumerable: true, writable: true, configurable: true })
  }
  return copy as T
}
