import { Problem } from '../problems.js'

// SPEC "Details": nesting deeper than 512 levels is a 400. Counted by a flat scan before JSON.parse and
// before anything recursive (validation, serialisation, the database) sees the body.
export const MAX_JSON_DEPTH = 512
// Where an append body holds its events, `#` standing for any element of an array: `events[i]`, or
// `appends[j].events[i]` for POST /appends. Each level is one of nesting around an event's data.
const EVENTS_PATHS = { append: ['events', '#'], appends: ['appends', '#', 'events', '#'] } as const
type BodyShape = keyof typeof EVENTS_PATHS

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
  // the array indexes along the events path: [i], or [j, i]
  at: number[]
  key: 'data' | 'metadata'
  text: string
}

// One flat pass over a body: checks the nesting depth and, for an append body, finds the text of every
// event's `data` and `metadata` along its events path. Grammar is left to JSON.parse, which runs next.
class BodyScan {
  // by the indexes of the arrays that hold the events array ('' for `events`, `j` for `appends[j].events`)
  readonly captured = new Map<string, Captured[]>()
  // per open level: whether it is an object (else an array), the member name it is at, the element it is at
  private readonly objects: boolean[] = []
  private readonly keys: (string | undefined)[] = []
  private readonly indexes: number[] = []
  private depth = 0
  private expectKey = false
  // the depth of an event's members (its object's level + 1); 0: nothing is captured
  private readonly captureDepth: number
  // where the `data` or `metadata` value being captured starts (-1: none), and whether it holds whitespace
  private captureStart = -1
  private spaced = false

  constructor(
    private readonly text: string,
    private readonly maxDepth: number,
    private readonly path: readonly string[] = [],
  ) {
    this.captureDepth = path.length === 0 ? 0 : path.length + 1
  }

  run(): Map<string, Captured[]> {
    const { text } = this
    for (let at = 0; at < text.length; at++) {
      const code = text.charCodeAt(at)
      if (isSpace(code)) {
        if (this.captureStart !== -1) this.spaced = true
      } else if (code === COMMA) {
        this.expectKey = this.objects[this.depth - 1] === true
      } else if (code !== COLON) {
        if (this.captureDepth > 0) this.beforeToken(at, code)
        at = this.token(at, code) - 1
      }
    }
    return this.captured
  }

  // A value in an array is its next element; a value of an event's `data` or `metadata` starts a capture.
  private beforeToken(at: number, code: number): void {
    const level = this.depth - 1
    if (level >= 0 && !this.objects[level] && code !== CLOSE_ARRAY) this.indexes[level]!++
    if (this.depth === this.captureDepth && this.captureStart === -1 && !this.expectKey && code !== CLOSE_OBJECT && this.inEventMember()) {
      this.captureStart = at
      this.spaced = false
    }
  }

  // whether the levels open now are the events path, down to `data` or `metadata` of an event
  private onPath(levels: number): boolean {
    for (let level = 0; level < levels; level++) {
      const step = this.path[level]
      if (step === '#' ? this.objects[level] !== false : this.objects[level] !== true || this.keys[level] !== step) return false
    }
    return true
  }

  private inEventMember(): boolean {
    const key = this.keys[this.path.length]
    return (key === 'data' || key === 'metadata') && this.objects[this.path.length] === true && this.onPath(this.path.length)
  }

  // the array indexes along the events path, down to `levels`
  private indexesOn(levels: number): number[] {
    const at: number[] = []
    for (let level = 0; level < levels; level++) if (this.path[level] === '#') at.push(this.indexes[level]!)
    return at
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
    if (this.captureStart !== -1 && this.depth === this.captureDepth) this.capture(end)
    return end
  }

  private open(object: boolean): void {
    if (++this.depth > this.maxDepth) throw tooDeep(this.maxDepth)
    this.objects[this.depth - 1] = object
    this.keys[this.depth - 1] = undefined
    this.indexes[this.depth - 1] = -1
    this.expectKey = object
  }

  // A member name on the way to the events: JSON.parse keeps the last of repeated names, and so does this, by
  // dropping what the earlier array of that name gave.
  private key(start: number, end: number): number {
    this.expectKey = false
    if (this.depth > this.captureDepth) return end
    const level = this.depth - 1
    const key = keyOf(this.text, start, end)
    this.keys[level] = key
    if (level < this.path.length && this.path[level] === key && this.onPath(level)) {
      if (level === 0) this.captured.clear()
      else this.captured.delete(this.indexesOn(level).join(','))
    }
    return end
  }

  private capture(end: number): void {
    const raw = this.text.slice(this.captureStart, end)
    const at = this.indexesOn(this.path.length)
    const holder = at.slice(0, -1).join(',')
    const list = this.captured.get(holder) ?? []
    list.push({ at, key: this.keys[this.path.length] as 'data' | 'metadata', text: this.spaced ? compactJson(raw) : raw })
    this.captured.set(holder, list)
    this.captureStart = -1
  }
}

// The value at `path` in a parsed body, `#` steps taken by the given indexes; undefined when it is not there.
const walk = (body: unknown, path: readonly string[], at: number[]): unknown => {
  let value = body
  let next = 0
  for (const step of path) {
    if (typeof value !== 'object' || value === null) return undefined
    if (step === '#') {
      if (!Array.isArray(value)) return undefined
      value = value[at[next++]!]
    } else {
      if (Array.isArray(value) || !Object.hasOwn(value, step)) return undefined
      value = (value as Record<string, unknown>)[step]
    }
  }
  return value
}

const attach = (body: unknown, shape: BodyShape, captured: Map<string, Captured[]>): void => {
  for (const list of captured.values()) {
    for (const { at, key, text } of list) {
      const event = walk(body, EVENTS_PATHS[shape], at)
      if (typeof event !== 'object' || event === null || Array.isArray(event)) continue
      const texts = eventTexts.get(event) ?? {}
      texts[key] = text
      eventTexts.set(event, texts)
    }
  }
}

// Every JSON body: the depth is checked before JSON.parse, which keeps `__proto__` and `constructor` as
// ordinary own keys (the body is data; nothing here reads a prototype through it).
export const parseJsonBody = (text: string): unknown => {
  new BodyScan(text, MAX_JSON_DEPTH).run()
  return parseOrRefuse(text)
}

// An append body (`append`: POST /streams/{streamId}/events, `appends`: POST /appends): the same, plus the sent
// text of each event's data and metadata (eventJsonText). The depth limit counts from an event's data.
export const appendBodyParser = (shape: BodyShape) => (text: string): unknown => {
  const path = EVENTS_PATHS[shape]
  const captured = new BodyScan(text, MAX_JSON_DEPTH + path.length + 1, path).run()
  const body = parseOrRefuse(text)
  attach(body, shape, captured)
  return body
}

export const parseAppendBody = appendBodyParser('append')
export const parseAppendsBody = appendBodyParser('appends')

const parseOrRefuse = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw notJson()
  }
}
