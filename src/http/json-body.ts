import { Problem } from '../problems.js'

// SPEC "Details": nesting deeper than 512 levels is a 400. Counted by a flat scan before JSON.parse and
// before anything recursive (validation, serialisation, the database) sees the body.
export const MAX_JSON_DEPTH = 512
// An append body wraps each event's data in three levels: the body, its `events` array and the event.
const APPEND_ENVELOPE_DEPTH = 3

// The text of an event's `data` and `metadata` exactly as the client sent it, whitespace between tokens
// removed (SPEC "Details": data comes back exactly as sent, every number's digits and every key kept).
export interface EventJsonText {
  data?: string
  metadata?: string
}

const eventTexts = new WeakMap<object, EventJsonText>()

// The sent text of one event of a parsed append body; undefined for events built in the process.
export const eventJsonText = (event: object): EventJsonText | undefined => eventTexts.get(event)

const notJson = (): Problem => new Problem('validation-failed', {}, 'the body is not valid JSON')
const tooDeep = (limit: number): Problem =>
  new Problem('validation-failed', { maxDepth: MAX_JSON_DEPTH }, `the body nests deeper than ${limit} levels`)

const QUOTE = 34
const BACKSLASH = 92
const OPEN_OBJECT = 123
const CLOSE_OBJECT = 125
const OPEN_ARRAY = 91
const CLOSE_ARRAY = 93
const COLON = 58
const COMMA = 44
const isSpace = (code: number): boolean => code === 32 || code === 10 || code === 13 || code === 9

// The index just past the string that opens at `start`.
const stringEnd = (text: string, start: number): number => {
  let end = text.indexOf('"', start + 1)
  while (end !== -1) {
    let slashes = 0
    while (text.charCodeAt(end - 1 - slashes) === BACKSLASH) slashes++
    if (slashes % 2 === 0) return end + 1
    end = text.indexOf('"', end + 1)
  }
  throw notJson()
}

// The index just past the number or literal that starts at `start`.
const scalarEnd = (text: string, start: number): number => {
  let end = start
  for (; end < text.length; end++) {
    const code = text.charCodeAt(end)
    if (isSpace(code) || code === COMMA || code === CLOSE_OBJECT || code === CLOSE_ARRAY || code === COLON) break
  }
  return end
}

const keyOf = (text: string, start: number, end: number): string => {
  const raw = text.slice(start + 1, end - 1)
  return raw.includes('\\') ? (JSON.parse(text.slice(start, end)) as string) : raw
}

// Whitespace outside strings removed: stored text holds no line break, so reads can splice it as is.
export const compactJson = (text: string): string => {
  let out = ''
  let from = 0
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index)
    if (code === QUOTE) {
      index = stringEnd(text, index) - 1
    } else if (isSpace(code)) {
      out += text.slice(from, index)
      from = index + 1
    }
  }
  return out + text.slice(from)
}

interface Captured {
  index: number
  key: 'data' | 'metadata'
  text: string
}

// One flat pass over the body: checks the nesting depth and, for an append body, finds the text of
// every `events[i].data` and `events[i].metadata`. Grammar is left to JSON.parse, which runs next.
const scan = (text: string, maxDepth: number, captureEvents: boolean): Captured[] => {
  const objects: boolean[] = []
  const captured: Captured[] = []
  let depth = 0
  let expectKey = false
  let rootKey: string | undefined
  let memberKey: string | undefined
  let index = -1
  let captureStart = -1
  let spaced = false
  const inEvents = (): boolean => captureEvents && objects[0] === true && rootKey === 'events' && objects[1] === false
  for (let at = 0; at < text.length; at++) {
    const code = text.charCodeAt(at)
    if (isSpace(code)) {
      if (captureStart !== -1) spaced = true
      continue
    }
    if (code === COLON) continue
    if (code === COMMA) {
      expectKey = objects[depth - 1] === true
      continue
    }
    if (depth === 2 && code !== CLOSE_ARRAY && inEvents()) index++
    if (depth === 3 && captureStart === -1 && !expectKey && code !== CLOSE_OBJECT && (memberKey === 'data' || memberKey === 'metadata') && objects[2] === true && inEvents()) {
      captureStart = at
      spaced = false
    }
    let end = at + 1
    if (code === OPEN_OBJECT || code === OPEN_ARRAY) {
      if (++depth > maxDepth) throw tooDeep(maxDepth)
      objects[depth - 1] = code === OPEN_OBJECT
      expectKey = code === OPEN_OBJECT
    } else if (code === CLOSE_OBJECT || code === CLOSE_ARRAY) {
      depth--
      expectKey = false
    } else if (code === QUOTE) {
      end = stringEnd(text, at)
      if (expectKey) {
        expectKey = false
        if (depth === 1) {
          rootKey = keyOf(text, at, end)
          // JSON.parse keeps the last of repeated keys, and so does this
          if (rootKey === 'events') captured.length = 0
          index = -1
        } else if (depth === 3) {
          memberKey = keyOf(text, at, end)
        }
        at = end - 1
        continue
      }
    } else {
      end = scalarEnd(text, at)
    }
    at = end - 1
    if (captureStart !== -1 && depth === 3) {
      const raw = text.slice(captureStart, end)
      captured.push({ index, key: memberKey as 'data' | 'metadata', text: spaced ? compactJson(raw) : raw })
      captureStart = -1
    }
  }
  return captured
}

const attach = (body: unknown, captured: Captured[]): void => {
  if (typeof body !== 'object' || body === null || !Object.hasOwn(body, 'events')) return
  const events = (body as { events: unknown }).events
  if (!Array.isArray(events)) return
  for (const { index, key, text } of captured) {
    const event: unknown = events[index]
    if (typeof event !== 'object' || event === null || Array.isArray(event)) continue
    const texts = eventTexts.get(event) ?? {}
    texts[key] = text
    eventTexts.set(event, texts)
  }
}

// Every JSON body: the depth is checked before JSON.parse, which keeps `__proto__` and `constructor` as
// ordinary own keys (the body is data; nothing here reads a prototype through it).
export const parseJsonBody = (text: string): unknown => {
  scan(text, MAX_JSON_DEPTH, false)
  return parseOrRefuse(text)
}

// An append body: the same, plus the sent text of each event's data and metadata (eventJsonText).
export const parseAppendBody = (text: string): unknown => {
  const captured = scan(text, MAX_JSON_DEPTH + APPEND_ENVELOPE_DEPTH, true)
  const body = parseOrRefuse(text)
  attach(body, captured)
  return body
}

const parseOrRefuse = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw notJson()
  }
}
