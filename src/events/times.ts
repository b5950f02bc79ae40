// SPEC "Details": times anywhere (query filters, backfill bodies) are RFC 3339 with years 1–9999; anything else is
// a 400. The one parser behind every such field (the `date-time` format of every request schema, and the /events
// and /subscribe filters), so PostgreSQL, which compares in SQL, and the live filter, which compares in memory,
// are never handed a time only one of them understands.

const RFC_3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/

const MIN_MS = Date.parse('0001-01-01T00:00:00.000Z')
const MAX_MS = Date.parse('9999-12-31T23:59:59.999Z')

const isLeap = (year: number): boolean => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
const daysIn = (year: number, month: number): number => [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!

// An instant to the millisecond, rounded down (`floor`) and up (`ceil`) when the text has finer digits: events'
// createdAt has millisecond precision, so `since` compares with `ceil` and `until` with `floor`, and an event is
// selected exactly when its createdAt, as read, lies between the two times as written.
export interface Instant {
  floor: number
  ceil: number
}

// Undefined for anything that is not such a time: a month 13, February 30, a leap second (second 60: neither
// JavaScript nor PostgreSQL keeps one, and they disagree on what it means), a year 0, or an offset that takes the
// instant outside years 1–9999.
export const parseTime = (text: string): Instant | undefined => {
  const match = RFC_3339.exec(text)
  if (!match) return undefined
  const [, y, mo, d, h, mi, s, fraction = '', zulu, sign, oh, om] = match
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number) as [number, number, number, number, number, number]
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined
  if (hour > 23 || minute > 59 || second > 59) return undefined
  if (!zulu && (Number(oh) > 23 || Number(om) > 59)) return undefined
  const local = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}.${fraction.padEnd(3, '0').slice(0, 3)}Z`)
  const offsetMs = zulu ? 0 : (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om)) * 60_000
  const floor = local - offsetMs
  if (Number.isNaN(floor) || floor < MIN_MS || floor > MAX_MS) return undefined
  const finer = /[1-9]/.test(fraction.slice(3))
  return { floor, ceil: finer ? floor + 1 : floor }
}

export const isTime = (text: string): boolean => parseTime(text) !== undefined
