import t from 'tap'
import { randomBytes } from 'node:crypto'
import { appendEvents } from '../../src/events/append.js'
import { openEvent } from '../../src/events/event-json.js'
import { Keyring } from '../../src/events/keyring.js'
import { fingerprintOf } from '../../src/events/personal-cipher.js'
import { readLogText } from '../../src/events/read-log-text.js'
import { rewrapDataKeys } from '../../src/events/rewrap-keys.js'
import { testDatabase } from '../helpers/test-database.js'

// Rotating the master key without downtime (docs/personal-data.md, "Rotating the master key"): instances that accept
// both keys read every data key while they are re-wrapped, and once they are, the old key is no longer needed.
const db = await testDatabase(t)
const OLD = randomBytes(32).toString('base64')
const NEW = randomBytes(32).toString('base64')

const append = (keyring: Keyring, subject: string, name: string) =>
  appendEvents(db.sql, 'default', `customer-${subject}`, { events: [{ type: 'CustomerRegistered', data: {}, subject, personalData: { name } }] }, keyring)

// every personal event of the log as this keyring opens it: subject → name (null once forgotten)
const names = async (keyring: Keyring): Promise<Record<string, unknown>> => {
  const page = await readLogText(db.sql, 'default', Number.MAX_SAFE_INTEGER, { limit: 1000 })
  return Object.fromEntries(page.events.map((event) => openEvent(event, keyring)).map((event) => [event.subject, event.personalData === null ? null : JSON.parse(event.personalData!).name]))
}
const wraps = async (): Promise<string[]> =>
  (await db.sql<{ keyWrap: string | null }[]>`select key_wrap as "keyWrap" from subject_keys order by subject`).map((row) => row.keyWrap ?? 'destroyed')

t.test('old → new: re-wrapped while both are accepted, then the new key alone reads everything', async (t) => {
  const old = new Keyring(OLD)
  await append(old, 'a', 'Ada')
  await append(old, 'b', 'Babbage')
  await append(old, 'c', 'Countess')
  await db.sql`update subject_keys set data_key = null, key_wrap = null, forgotten_at = now() where subject = 'c'`
  const expected = { a: 'Ada', b: 'Babbage', c: null }
  // step 1: every instance accepts the next key too, still wrapping with the old one
  const stepOne = new Keyring(OLD, NEW)
  t.same(await names(stepOne), expected)
  t.same(await rewrapDataKeys(db.sql, stepOne), { rewrapped: 0, skipped: 0 }, 'nothing to do while the old key is current')
  // step 2: instances switch to the new key, keeping the old one as previous; their start re-wraps
  const stepTwo = new Keyring(NEW, OLD)
  await append(stepTwo, 'd', 'Dorothea')
  t.same(await names(stepOne), { ...expected, d: 'Dorothea' }, 'an instance still at step 1 reads keys the new one made')
  t.same(await rewrapDataKeys(db.sql, stepTwo), { rewrapped: 2, skipped: 0 })
  t.same(await wraps(), [fingerprintOf(Buffer.from(NEW, 'base64')), fingerprintOf(Buffer.from(NEW, 'base64')), 'destroyed', fingerprintOf(Buffer.from(NEW, 'base64'))])
  t.same(await names(stepOne), { ...expected, d: 'Dorothea' }, 'and the re-wrapped ones')
  t.same(await rewrapDataKeys(db.sql, stepTwo), { rewrapped: 0, skipped: 0 }, 'a second run has nothing left')
  // step 3: the old key is dropped
  t.same(await names(new Keyring(NEW)), { ...expected, d: 'Dorothea' })
  await t.rejects(names(new Keyring(OLD)), /not given/, 'the old key alone no longer reads them')
  t.same(await rewrapDataKeys(db.sql, new Keyring(OLD)), { rewrapped: 0, skipped: 3 }, 'a server without the new key skips, and says so')
})

t.test('unwrapped → wrapped: setting ENCRYPTION_KEY for the first time wraps the keys stored without one', async (t) => {
  await append(new Keyring(), 'e', 'Emmy')
  const wrapped = new Keyring(NEW)
  t.same(await rewrapDataKeys(db.sql, wrapped), { rewrapped: 1, skipped: 0 })
  t.notOk((await wraps()).includes('none'))
  t.equal((await names(wrapped)).e, 'Emmy')
})
