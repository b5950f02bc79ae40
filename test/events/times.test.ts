import t from 'tap'
import { parseTime } from '../../src/events/times.js'

// SPEC "Details": RFC 3339 with years 1–9999, read alike by PostgreSQL and JavaScript (src/events/times.ts).
t.test('RFC 3339 times with years 1–9999 parse to the millisecond, rounded both ways', async (t) => {
  const cases: [string, number, number][] = [
    ['2025-03-01T10:15:30Z', Date.UTC(2025, 2, 1, 10, 15, 30), 0],
    ['2025-03-01t10:15:30.5z', Date.UTC(2025, 2, 1, 10, 15, 30, 500), 0],
    ['2025-03-01 10:15:30.1234+05:30', Date.UTC(2025, 2, 1, 4, 45, 30, 123), 1],
    ['2025-03-01T10:15:30.123000-00:00', Date.UTC(2025, 2, 1, 10, 15, 30, 123), 0],
    ['2024-02-29T23:59:59.999999999Z', Date.UTC(2024, 1, 29, 23, 59, 59, 999), 1],
    ['2000-02-29T00:00:00Z', Date.UTC(2000, 1, 29), 0],
    ['0001-01-01T00:00:00Z', Date.parse('0001-01-01T00:00:00Z'), 0],
    ['9999-12-31T23:59:59.999Z', Date.parse('9999-12-31T23:59:59.999Z'), 0],
  ]
  for (const [text, floor, finer] of cases) t.same(parseTime(text), { floor, ceil: floor + finer }, text)
})

t.test('anything else is no time', async (t) => {
  for (const text of [
    '2016-12-31T23:59:60Z', '0000-01-01T00:00:00Z', '0001-01-01T00:00:00+00:01', '9999-12-31T23:59:59-00:01',
    '1900-02-29T00:00:00Z', '2025-04-31T00:00:00Z', '2025-13-01T00:00:00Z', '2025-01-01T24:00:00Z', '2025-01-01T10:60:00Z',
    '2025-01-01T10:00:00+24:00', '2025-01-01T10:00:00+01:60', '2025-01-01T10:00:00', '2025-01-01', '+002025-01-01T00:00:00Z',
    '2025-01-01T10:00:00.Z', '2025-01-01T10:00:00.1234567890Z', '', 'now',
  ]) t.equal(parseTime(text), undefined, text)
})
