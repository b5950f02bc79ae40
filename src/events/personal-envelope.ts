import { Problem } from '../problems.js'
import type { Sql } from '../db/connect.js'
import type { Keyring } from './keyring.js'

// An event naming a subject reaches append_events() with its metadata text replaced by this envelope, which the
// trigger events_take_personal_data() (sql/0019) takes apart into the subject, the sealed personal data and the
// metadata as sent. The append functions stay as they are, and only the envelope's rows call the trigger.
const ENVELOPE_OPENING = '{"$annalist":{'

export interface PersonalPart {
  subject: string
  // base64 of the sealed personalData, when the event carries it
  sealed?: string
}

export const envelopeText = ({ subject, sealed }: PersonalPart, metadataText: string | undefined): string =>
  `{"$annalist":{"subject":${JSON.stringify(subject)}${sealed === undefined ? '' : `,"personalData":"${sealed}"`},"metadata":${metadataText ?? '{}'}}}`

// Metadata sent by a client that happens to open exactly like the envelope gets a space after its brace (SPEC
// "Details": whitespace between tokens may be normalised), so only the server's envelope matches the trigger's test.
export const unambiguousMetadata = (text: string): string => (text.startsWith(ENVELOPE_OPENING) ? `{ ${text.slice(1)}` : text)

interface PersonalInput {
  subject?: string | undefined
  personalData?: Record<string, unknown> | undefined
}

// Each event's personal part, its personalData sealed under its subject's data key (fetched or created once per
// subject of the request). Undefined for an event without a subject; none at all, and no work, when no event has one.
export const sealPersonalParts = async (
  sql: Sql,
  keyring: Keyring | undefined,
  tenant: string,
  events: PersonalInput[],
): Promise<(PersonalPart | undefined)[] | undefined> => {
  if (!events.some((event) => event.subject !== undefined || event.personalData !== undefined)) return undefined
  const keys = new Map<string, Buffer>()
  const parts: (PersonalPart | undefined)[] = []
  for (const { subject, personalData } of events) {
    if (personalData !== undefined && subject === undefined) throw new Problem('validation-failed', {}, 'an event with personalData needs a subject')
    if (subject === undefined) {
      parts.push(undefined)
    } else if (personalData === undefined) {
      parts.push({ subject })
    } else {
      if (!keyring) throw new Error('personal data was appended without a keyring')
      let key = keys.get(subject)
      if (!key) keys.set(subject, (key = await keyring.sealingKey(sql, tenant, subject)))
      parts.push({ subject, sealed: keyring.seal(key, tenant, subject, JSON.stringify(personalData)) })
    }
  }
  return parts
}
