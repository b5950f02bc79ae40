import { Problem } from '../problems.js'
import { CHANNEL } from '../db/channels.js'
import type { Sql } from '../db/connect.js'
import { fingerprintOf, newKey, seal, unseal } from './personal-cipher.js'
import { rewrapDataKeys } from './rewrap-keys.js'

// subject_keys.key_wrap of a data key stored as it is (no ENCRYPTION_KEY)
export const UNWRAPPED = 'none'
// unwrapped data keys kept in memory, the least recently used going first
const CACHE_ENTRIES = 10_000

// The `personal` column of an event read (event-columns.ts): null for an event without a subject, else its storage
// tenant, subject, sealed personal data (base64, null when it has none) and the subject's stored data key (hex) with the
// name of what wraps it ([null, null] once destroyed; null when the event has no personal data).
type PersonalColumn = [tenant: string, subject: string, sealed: string | null, stored: [key: string | null, wrap: string | null] | null]

// What a read shows of an event's personal part: personalData is JSON text, null once the subject is forgotten.
export interface Revealed {
  subject: string
  personalData?: string | null
  forgotten?: true
}

interface KeyringLog {
  info: (object: object, message: string) => void
  warn: (object: object, message: string) => void
}

export interface StoredKey {
  dataKey: Buffer | null
  keyWrap: string | null
}

export const subjectForgotten = (subject: string): Problem =>
  new Problem('subject-forgotten', { subject }, `subject ${subject} is forgotten: its personal data can no longer be stored`)

const contextOf = (tenant: string, subject: string): string => `${tenant}\u0000${subject}`

// The data keys of subjects (SPEC "Personal data"): created on first use, wrapped with the master key
// (ENCRYPTION_KEY) when there is one, unwrapped once and cached. A read brings each event's stored key along in the
// same statement (event-columns.ts), so a destroyed key is seen at once on every instance, whatever is cached; the
// cache only spares unwrapping, and a forget (NOTIFY annalist_subjects) drops the entry so the key leaves memory too.
export class Keyring {
  readonly #wrapWith: { key: Buffer; fingerprint: string } | undefined
  readonly #masters = new Map<string, Buffer>()
  readonly #keys = new Map<string, { stored: string; key: Buffer }>()
  #unlisten: (() => Promise<void>) | undefined
  #rewrapping: Promise<void> = Promise.resolve()

  constructor(master?: string, other?: string, private readonly cacheEntries = CACHE_ENTRIES) {
    for (const base64 of [master, other]) {
      if (base64 === undefined) continue
      const key = Buffer.from(base64, 'base64')
      this.#masters.set(fingerprintOf(key), key)
    }
    if (master !== undefined) {
      const key = Buffer.from(master, 'base64')
      this.#wrapWith = { key, fingerprint: fingerprintOf(key) }
    }
  }

  // false: data keys are stored unwrapped (the start-up log says so)
  get wraps(): boolean {
    return this.#wrapWith !== undefined
  }

  // subject_keys.key_wrap of a key wrapped now: the master key's fingerprint, or UNWRAPPED
  get currentWrap(): string {
    return this.#wrapWith?.fingerprint ?? UNWRAPPED
  }

  // Also re-wraps, in the background, every data key not wrapped with the current ENCRYPTION_KEY (a rotation).
  async start(sql: Sql, log: KeyringLog): Promise<void> {
    const listening = await sql.listen(
      CHANNEL.subjects,
      (payload) => this.#evictPayload(payload),
      // a (re)connected LISTEN may have missed a forget: start the cache afresh
      () => this.#keys.clear(),
    )
    this.#unlisten = listening.unlisten
    this.#rewrapping = this.#rewrap(sql, log)
  }

  async stop(): Promise<void> {
    await this.#rewrapping
    await this.#unlisten?.().catch(() => undefined)
    this.#keys.clear()
  }

  evict(tenant: string, subject: string): void {
    this.#keys.delete(contextOf(tenant, subject))
  }

  // The data key to seal a subject's personal data with, created on first use. A forgotten subject has none: 409.
  // (The insert re-checks under a row lock, so an entry cached before a forget elsewhere cannot store anything.)
  async sealingKey(sql: Sql, tenant: string, subject: string): Promise<Buffer> {
    const cached = this.#keys.get(contextOf(tenant, subject))
    if (cached) return cached.key
    const fresh = this.#wrap(newKey())
    const created = await sql<StoredKey[]>`
      insert into subject_keys (tenant, subject, data_key, key_wrap)
      values (${tenant}, ${subject}, ${fresh.dataKey}, ${fresh.keyWrap})
      on conflict (tenant, subject) do nothing
      returning data_key as "dataKey", key_wrap as "keyWrap"`
    // a racer's insert committed first: its row is only visible to a statement started after it
    const [row] = created.length > 0 ? created : await sql<StoredKey[]>`
      select data_key as "dataKey", key_wrap as "keyWrap" from subject_keys where tenant = ${tenant} and subject = ${subject}`
    if (!row?.dataKey) throw subjectForgotten(subject)
    return this.#cached(tenant, subject, row.dataKey.toString('hex'), row.keyWrap)
  }

  // The personal data's JSON text sealed under the subject's key, as base64 for the append's envelope.
  seal(key: Buffer, tenant: string, subject: string, personalData: string): string {
    return seal(key, Buffer.from(personalData), contextOf(tenant, subject)).toString('base64')
  }

  // An event's `personal` column as the fields a read returns.
  reveal(personal: string): Revealed {
    const [tenant, subject, sealed, stored] = JSON.parse(personal) as PersonalColumn
    if (sealed === null) return { subject }
    if (!stored?.[0]) return { subject, personalData: null, forgotten: true }
    const key = this.#cached(tenant, subject, stored[0], stored[1])
    return { subject, personalData: unseal(key, Buffer.from(sealed, 'base64'), contextOf(tenant, subject)).toString() }
  }

  // A data key as subject_keys stores it: wrapped with the master key, or as it is.
  #wrap(dataKey: Buffer): StoredKey {
    if (!this.#wrapWith) return { dataKey, keyWrap: UNWRAPPED }
    return { dataKey: seal(this.#wrapWith.key, dataKey, 'data key'), keyWrap: this.#wrapWith.fingerprint }
  }

  // Re-wraps a stored data key with the current master key (a rotation); null when it already is.
  rewrap(stored: StoredKey): StoredKey | null {
    if (!stored.dataKey || stored.keyWrap === this.currentWrap) return null
    return this.#wrap(this.#unwrap(stored.dataKey, stored.keyWrap))
  }

  #unwrap(stored: Buffer, keyWrap: string | null): Buffer {
    if (keyWrap === UNWRAPPED) return stored
    const master = keyWrap === null ? undefined : this.#masters.get(keyWrap)
    if (!master) throw new Error(`a data key is wrapped with a master key this server was not given (${keyWrap}): set ENCRYPTION_KEY or ENCRYPTION_KEY_PREVIOUS`)
    return unseal(master, stored, 'data key')
  }

  // the unwrapped key, from the cache while the stored key is the one it was unwrapped from
  #cached(tenant: string, subject: string, stored: string, keyWrap: string | null): Buffer {
    const name = contextOf(tenant, subject)
    const entry = this.#keys.get(name)
    if (entry?.stored === stored) {
      this.#keys.delete(name)
      this.#keys.set(name, entry)
      return entry.key
    }
    const key = this.#unwrap(Buffer.from(stored, 'hex'), keyWrap)
    this.#keys.delete(name)
    this.#keys.set(name, { stored, key })
    if (this.#keys.size > this.cacheEntries) this.#keys.delete(this.#keys.keys().next().value!)
    return key
  }

  async #rewrap(sql: Sql, log: KeyringLog): Promise<void> {
    try {
      const { rewrapped, skipped } = await rewrapDataKeys(sql, this)
      if (rewrapped > 0) log.info({ rewrapped }, 'data keys wrapped again with the current ENCRYPTION_KEY')
      if (skipped > 0) log.warn({ skipped }, 'data keys are wrapped with a master key this server was not given: set ENCRYPTION_KEY_PREVIOUS')
    } catch (error) {
      log.warn({ err: error }, 'data keys could not be wrapped again')
    }
  }

  #evictPayload(payload: string): void {
    try {
      const [tenant, subject] = JSON.parse(payload) as [string, string]
      this.evict(tenant, subject)
    } catch {
      this.#keys.clear()
    }
  }
}
