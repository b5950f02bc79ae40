import type { EventJson } from './event-page-json.js'
import type { Keyring, Revealed } from './keyring.js'
import type { StoredEventText } from './read-log-text.js'
import type { StoredEvent } from './schemas.js'
import type { Upcasters } from './upcasters.js'
import { parseExact, stringifyExact } from './exact-json.js'

const LINE_BREAK = /[\r\n]/

// A stored event as read, its personal part opened: subject and personalData (JSON text, null once forgotten).
export type OpenedEventText = StoredEventText & Partial<Revealed>

// the sealed personal part as a read shows it; undefined for an event naming no subject
const openPersonal = (personal: string | null | undefined, keyring: Keyring | undefined): Revealed | undefined => {
  if (personal === null || personal === undefined) return undefined
  if (!keyring) throw new Error('an event with personal data was read without a keyring')
  return keyring.reveal(personal)
}

// SPEC "Personal data": every read decrypts, here, beside upcasting: eventJson (stream and log pages, load,
// /subscribe) and the projection readers (source-events.ts, backfill-job.ts) open each event before anything else
// sees it. An event without a subject is passed through as it is (its `personal` column is null).
// (Returned as it is, not copied: the read hot paths pay one property test per event.)
export const openEvent = <T extends StoredEventText>(event: T, keyring: Keyring | undefined): T & Partial<Revealed> => {
  const revealed = openPersonal(event.personal, keyring)
  return revealed ? { ...event, personal: null, ...revealed } : event
}

type Parsed<T> = Omit<T, 'data' | 'metadata' | 'personalData' | 'personal'> & Pick<StoredEvent, 'data' | 'metadata' | 'personalData'>

// `parse` is parseExact (exact-json.ts) for readers that must keep every number, JSON.parse otherwise.
export const parseStoredText = <T extends OpenedEventText>(event: T, parse: (text: string) => unknown = JSON.parse): Parsed<T> => {
  const { personal: _, ...opened } = event
  const parsed = { ...opened, data: parse(event.data), metadata: parse(event.metadata) as Record<string, unknown> }
  if (typeof event.personalData === 'string') parsed.personalData = parse(event.personalData) as never
  return parsed as unknown as Parsed<T>
}

// subject, personalData and forgotten as a read shows them, after the event's own fields
const personalJson = ({ subject, personalData, forgotten }: Partial<Revealed>): string =>
  subject === undefined
    ? ''
    : `,"subject":${JSON.stringify(subject)}${personalData === undefined ? '' : `,"personalData":${personalData}`}${forgotten ? ',"forgotten":true' : ''}`

// A stored event as JSON, spliced from the stored text instead of parsed and re-encoded (the read hot
// paths). Stream ids, types and event ids hold no character JSON escapes. Stored text with a line break
// (only JSON written to the database by hand could have one) is re-encoded, so the result is one line.
export const eventJsonFromText = (event: OpenedEventText): string => {
  if (LINE_BREAK.test(event.data) || LINE_BREAK.test(event.metadata)) return JSON.stringify(parseStoredText(event))
  const { globalPosition, streamId, streamVersion, eventId, type, data, metadata, createdAt } = event
  return `{"globalPosition":${globalPosition},"streamId":"${streamId}","streamVersion":${streamVersion},"eventId":"${eventId}","type":"${type}","data":${data},"metadata":${metadata},"createdAt":"${createdAt}"${personalJson(event)}}`
}

// One stored event as JSON for a read: spliced from its stored text (exactly as sent), or, when an upcaster
// brings it to a newer schema version, the upcast event (its metadata exact, its data as the steps left it).
// Upcasters apply to `data` only; personal data is opened first and passed through.
export const eventJson = (stored: StoredEventText, upcasters: Upcasters): string => {
  const event = openEvent(stored, upcasters.keyring)
  if (!upcasters.covers(event.type)) return eventJsonFromText(event)
  const parsed = parseStoredText(event, parseExact)
  const upcast = upcasters.apply(parsed)
  return upcast === parsed ? eventJsonFromText(event) : stringifyExact(upcast)
}

// An event as JSON for a read, from the JSON the database made of it (event-page-json.ts): those bytes as they are,
// or, for a special event, what eventJson gives. The spliced text parses to the stored event exactly as its columns
// would (parseExact keeps every number), so the upcasters see the same event.
// An event naming a subject has its personal part opened here and its fields put after the event's own, as
// eventJsonFromText puts them.
export const eventJsonBytes = (event: EventJson, upcasters: Upcasters): Buffer | string => {
  if (!event.special) return event.json
  const text = event.json.toString('utf8')
  const parsed = parseExact(text) as StoredEvent
  const upcast = upcasters.covers(parsed.type) ? upcasters.apply(parsed) : parsed
  const personal = openPersonal(event.personal, upcasters.keyring)
  if (upcast !== parsed) return stringifyExact(personal ? { ...upcast, ...personalFields(personal) } : upcast)
  const plain = LINE_BREAK.test(text) ? JSON.stringify(JSON.parse(text)) : text
  return personal ? `${plain.slice(0, -1)}${personalJson(personal)}}` : plain
}

const personalFields = ({ subject, personalData, forgotten }: Revealed): Record<string, unknown> => ({
  subject,
  ...(personalData === undefined ? {} : { personalData: personalData === null ? null : parseExact(personalData) }),
  ...(forgotten ? { forgotten } : {}),
})
