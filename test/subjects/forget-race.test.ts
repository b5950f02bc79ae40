import t from 'tap'
import { randomUUID } from 'node:crypto'
import { appendEvents } from '../../src/events/append.js'
import { Keyring } from '../../src/events/keyring.js'
import { buildTestApp } from '../helpers/test-app.js'
import { streamId } from '../helpers/fixtures.js'

// SPEC "Personal data": a forget racing appends of personal data for the same subject. The key row orders them
// (sql/0019): an append committed before the forget is counted and unreadable after it; one after it is refused. No
// personal data is ever stored under a destroyed key and read again, also from an instance whose cache still has it.
const { app, db } = await buildTestApp(t)

const CLIENTS = 8
const APPENDS_PER_CLIENT = 40

t.test('appends racing a forget: each is 201 before it or 409 after it, and none reads back', async (t) => {
  const subject = `customer-${randomUUID().slice(0, 8)}`
  let forgetAfter = CLIENTS * 5
  let sent = 0
  let forgotten: Promise<any> | undefined
  const outcomes = new Map<number, number>()
  const client = async (index: number) => {
    const id = streamId('customer')
    for (let step = 0; step < APPENDS_PER_CLIENT; step++) {
      if (++sent === forgetAfter) forgotten = app.inject({ method: 'DELETE', url: `/subjects/${subject}` }).then((res) => res.json())
      const res = await app.inject({
        method: 'POST',
        url: `/streams/${id}/events`,
        payload: { events: [{ type: 'CustomerRegistered', data: { index, step }, subject, personalData: { name: `n-${index}-${step}` } }] },
      })
      outcomes.set(res.statusCode, (outcomes.get(res.statusCode) ?? 0) + 1)
      if (res.statusCode === 409) t.equal(res.json().code, 'subject-forgotten')
    }
  }
  await Promise.all(Array.from({ length: CLIENTS }, (_, index) => client(index)))
  const result = await forgotten!
  t.same([...outcomes.keys()].sort(), [201, 409], `only 201 and 409: ${JSON.stringify([...outcomes])}`)
  const [stored] = await db.sql<{ count: number }[]>`select count(*)::int as count from events where subject = ${subject} and personal_data is not null`
  t.equal(stored!.count, outcomes.get(201), 'every acknowledged append is stored')
  t.equal(result.events, stored!.count, 'the forget counted every stored one: none committed after it')
  const log = (await app.inject({ url: '/events?category=customer&limit=1000' })).json().events.filter((event: any) => event.subject === subject)
  t.equal(log.length, stored!.count)
  t.ok(log.every((event: any) => event.personalData === null && event.forgotten === true), 'none reads back')
  const [key] = await db.sql`select data_key from subject_keys where subject = ${subject}`
  t.equal(key!.data_key, null, 'no key was made again')
  forgetAfter = 0
})

t.test('an instance whose cache still holds the destroyed key cannot store personal data under it', async (t) => {
  const subject = `customer-${randomUUID().slice(0, 8)}`
  // another instance's keyring, which hears no NOTIFY: its cache keeps the key past the forget
  const elsewhere = new Keyring()
  const append = (name: string) =>
    appendEvents(db.sql, 'default', streamId('customer'), { events: [{ type: 'CustomerRegistered', data: {}, subject, personalData: { name } }] }, elsewhere)
  await append('before')
  t.equal((await app.inject({ method: 'DELETE', url: `/subjects/${subject}` })).json().events, 1)
  await t.rejects(append('after'), { code: 'subject-forgotten', status: 409 }, 'the insert finds the key destroyed')
  const [stored] = await db.sql<{ count: number }[]>`select count(*)::int as count from events where subject = ${subject}`
  t.equal(stored!.count, 1, 'nothing was written')
})
