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

// One flat pass over a body: checks the nesting depth and, for an append body, finds the text of every
// `events[i].data` and `events[i].metadata`. Grammar is left to JSON.parse, which runs next.
class BodyScan {
  readonly captured: Captured[] = []
  // per open level, whether it is an object (else an array)
  private readonly objects: boolean[] = []
  private depth = 0
  private expectKey = false
  private rootKey: string | undefined
  private memberKey: string | undefined
  // the element of `events` the scan is in
  private index = -1
  // where the `data` or `metadata` value being captured starts (-1: none), and whether it holds whitespace
  private captureStart = -1
  private spaced = false

  constructor(
    private readonly text: string,
    private readonly maxDepth: number,
    private readonly captureEvents: boolean,
  ) {}

  run(): Captured[] {
    const { text } = this
    for (let at = 0; at < text.length; at++) {
      const code = text.charCodeAt(at)
      if (isSpace(code)) {
        if (this.captureStart !== -1) this.spaced = true
      } else if (code === COMMA) {
        this.expectKey = this.objects[this.depth - 1] === true
      } else if (code !== COLON) {
        if (this.captureEvents) this.beforeToken(at, code)
        at = this.token(at, code) - 1
      }
    }
    return this.captured
  }

  // An element of the root `events` array starts at depth 2; the value of its `data` or `metadata` at depth 3.
  private beforeToken(at: number, code: number): void {
    if (this.depth === 2 && code !== CLOSE_ARRAY && this.inEvents()) this.index++
    if (this.depth === 3 && this.captureStart === -1 && !this.expectKey && code !== CLOSE_OBJECT && this.inEventMember()) {
      this.captureStart = at
      this.spaced = false
    }
  }

  private inEvents(): boolean {
    return this.objects[0] === true && this.rootKey === 'events' && this.objects[1] === false
  }

  private inEventMember(): boolean {
    return (this.memberKey === 'data' || this.memberKey === 'metadata') && this.objects[2] === true && this.inEvents()
  }

  // The index just past the token that starts at `at`.
  private token(at: number, code: number): number {
    let end = at + 1
    if (code === OPEN_OBJECT || code === OPEN_ARRAY) {
      this.open(code === OPEN_OBJECT)
    } else if (code === CLOSE_OBJECT || code === CLOSE_ARRAY) {
      this.depth--
      this.expectKey = false
    } else if (code === QUOTE) {
      end = stringEnd(this.text, at)
      if (this.expectKey) return this.key(at, end)
    } else {
      end = scalarEnd(this.text, at)
    }
    if (this.captureStart !== -1 && this.depth === 3) this.capture(end)
    return end
  }

  private open(object: boolean): void {
    if (++this.depth > this.maxDepth) throw tooDeep(this.maxDepth)
    this.objects[this.depth - 1] = object
    this.expectKey = object
  }

  // A member name: the root's names which member is `events`, an event's which are `data` and `metadata`.
  private key(start: number, end: number): number {
    this.expectKey = false
    if (this.depth === 1) {
      this.rootKey = keyOf(this.text, start, end)
      // JSON.parse keeps the last of repeated keys, and so does this
      if (this.rootKey === 'events') this.captured.length = 0
      this.index = -1
    } else if (this.depth === 3) {
      this.memberKey = keyOf(this.text, start, end)
    }
    return end
  }

  private capture(end: number): void {
    const raw = this.text.slice(this.captureStart, end)
    this.captured.push({ index: this.index, key: this.memberKey as 'data' | 'metadata', text: this.spaced ? compactJson(raw) : raw })
    this.captureStart = -1
  }
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
  new BodyScan(text, MAX_JSON_DEPTH, false).run()
  return parseOrRefuse(text)
}

// An append body: the same, plus the sent text of each event's data and metadata (eventJsonText).
export const parseAppendBody = (text: string): unknown => {
  const captured = new BodyScan(text, MAX_JSON_DEPTH + APPEND_ENVELOPE_DEPTH, true).run()
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
