import { CHANNEL } from '../db/channels.js'
import type { Sql } from '../db/connect.js'
import { SingleFlight } from '../single-flight.js'
import { cloneExact, toPlain } from './exact-json.js'
import { applyStep } from './upcast-step.js'
import { listUpcasters } from './upcaster-store.js'
import type { CodeUpcaster, CodeUpcasters, Upcaster } from './upcaster-types.js'
import type { StoredEvent } from './schemas.js'
import type { Keyring } from './keyring.js'

export interface UpcastersOptions {
  // a lost NOTIFY (or a dead LISTEN connection) delays a change made on another instance by at most this
  refreshMs?: number
  log?: { warn: (object: object, message: string) => void }
  // opens events' personal data on the same reads (event-json.ts: openEvent)
  keyring?: Keyring
}

// Declarative steps move values without reading them, so they keep numbers exact (JsonNumber); code steps
// were promised plain JS values (docs/exact-json.md).
interface Step {
  run: CodeUpcaster
  plain: boolean
}

// The event's schema version: `metadata.schemaVersion`, 1 when absent. Anything but a positive integer names
// no version an upcaster could start from, so such an event is read as stored.
const schemaVersionOf = (metadata: Record<string, unknown>): number | undefined => {
  const version = metadata.schemaVersion
  if (version === undefined) return 1
  return Number.isSafeInteger(version) && (version as number) >= 1 ? (version as number) : undefined
}

// SPEC "Schema evolution": old events are brought up to date on every read (stream reads, /events, /subscribe,
// load) and before every projection handler; stored events never change. `apply` is synchronous and works from
// memory: declarative upcasters are loaded at start, reloaded on NOTIFY (any instance's PUT or DELETE) and
// every `refreshMs`; code upcasters come from PROJECTIONS_DIR and win over a declarative step at the same version.
export class Upcasters {
  #steps = new Map<string, Map<number, Step>>()
  #timer: NodeJS.Timeout | undefined
  #unlisten: (() => Promise<void>) | undefined
  readonly #loads = new SingleFlight(() => this.#load())

  constructor(
    private readonly sql: Sql,
    private readonly code: CodeUpcasters = {},
    private readonly options: UpcastersOptions = {},
  ) {
    this.#build([])
  }

  // every read that upcasts opens personal data with this keyring too (event-json.ts)
  get keyring(): Keyring | undefined {
    return this.options.keyring
  }

  async start(): Promise<void> {
    const listening = await this.sql.listen(CHANNEL.upcasters, () => void this.reload().catch(() => undefined))
    this.#unlisten = listening.unlisten
    await this.reload()
    this.#timer = setInterval(() => void this.reload().catch(() => undefined), this.options.refreshMs ?? 5000)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await this.#unlisten?.().catch(() => undefined)
    await this.#loads.settled()
  }

  // One load at a time; a reload asked for during a load runs once more after it, so it sees every change made before it was asked.
  reload(): Promise<void> {
    return this.#loads.run()
  }

  async #load(): Promise<void> {
    try {
      this.#build(await listUpcasters(this.sql))
    } catch (error) {
      this.options.log?.warn({ err: error }, 'upcasters could not be loaded')
      throw error
    }
  }

  #build(definitions: Upcaster[]): void {
    const steps = new Map<string, Map<number, Step>>()
    for (const { type, steps: declared } of definitions) {
      const table = new Map<number, Step>()
      for (const step of declared) table.set(step.from, { run: (data) => applyStep(data, step), plain: false })
      steps.set(type, table)
    }
    for (const [type, table] of Object.entries(this.code)) {
      const merged = steps.get(type) ?? new Map<number, Step>()
      for (const [from, step] of Object.entries(table)) merged.set(Number(from), { run: step, plain: true })
      steps.set(type, merged)
    }
    this.#steps = steps
  }

  // The event brought as far as the upcasters of its type go, with metadata.schemaVersion set to where it got;
  // the same object when no step applies. The stored event (and the caller's copy of it) is left as it was.
  apply = <T extends StoredEvent>(event: T): T => {
    const table = this.#steps.get(event.type)
    if (!table) return event
    let version = schemaVersionOf(event.metadata)
    let step = version === undefined ? undefined : table.get(version)
    if (!step || version === undefined) return event
    let current: T = { ...event, data: cloneExact(event.data) }
    while (step) {
      const input = step.plain ? { ...current, data: toPlain(current.data), metadata: toPlain(current.metadata) } : current
      const data = step.run(input.data, input)
      version += 1
      current = { ...current, data, metadata: { ...event.metadata, schemaVersion: version } }
      step = table.get(version)
    }
    return current
  }

  // Whether events of this type may change on read (otherwise `apply` returns them as they are).
  covers(type: string): boolean {
    return this.#steps.has(type)
  }

  // The types whose events may change on read, for readers that leave the others to the database (event-runs.ts).
  types(): string[] {
    return [...this.#steps.keys()]
  }

  applyAll = <T extends StoredEvent>(events: T[]): T[] => (this.#steps.size === 0 ? events : events.map(this.apply))
}
