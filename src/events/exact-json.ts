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

const isDigit = (code: number): boolean => code >= 48 && code <= 57
const ZERO = 48
const DOT = 46

// Whether the number at [start, end) reads back as written (String(Number(text)) === text) without converting it,
// for the forms that always do: an integer of at most 15 digits other than -0, and a decimal of at most 15 digits
// in all, with no exponent, no trailing zero and at most five zeros after `0.`. Any decimal of at most 15
// significant digits is the one 15-digit decimal of its double, so it is also the shortest that gives that double
// back, which is what String() writes, in plain notation from 1e-6 up to 1e21. Undefined: convert to know.
const plainlyExact = (text: string, start: number, end: number): boolean | undefined => {
  let at = text.charCodeAt(start) === MINUS ? start + 1 : start
  const integer = at
  while (at < end && isDigit(text.charCodeAt(at))) at++
  const integerDigits = at - integer
  if (integerDigits === 0 || integerDigits > 15) return undefined
  if (at === end) return integer > start && integerDigits === 1 && text.charCodeAt(integer) === ZERO ? undefined : true
  if (text.charCodeAt(at) !== DOT) return undefined
  const fraction = ++at
  while (at < end && isDigit(text.charCodeAt(at))) at++
  const fractionDigits = at - fraction
  if (at !== end || fractionDigits === 0 || integerDigits + fractionDigits > 15 || text.charCodeAt(end - 1) === ZERO) return undefined
  if (integerDigits === 1 && text.charCodeAt(integer) === ZERO) {
    let zeros = 0
    while (text.charCodeAt(fraction + zeros) === ZERO) zeros++
    if (zeros > 5) return undefined
  }
  return true
}

// The spans of the numbers whose text String(Number(text)) would not give back; strings are skipped whole.
export const inexactNumbers = (text: string): [number, number][] => {
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
      if (plainlyExact(text, at, end) !== true) {
        const number = text.slice(at, end)
        if (String(Number(number)) !== number) spans.push([at, end])
      }
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
