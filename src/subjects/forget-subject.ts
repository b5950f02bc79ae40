import { LOCK_CLASS } from '../db/advisory-locks.js'
import { CHANNEL } from '../db/channels.js'
import type { Sql, Tx } from '../db/connect.js'
import type { Keyring } from '../events/keyring.js'
import { sourceConditions } from '../projections/engine/source-events.js'
import { projectorOf } from '../projections/backfills/backfill-commands.js'
import { sourceOf } from '../projections/engine/apply-event.js'
import type { ProjectionRunner } from '../projections/runner.js'
import type { ForgetResult } from './schemas.js'
import type { SubjectRebuilds } from './subject-rebuilds.js'

interface Forgotten {
  forgottenAt: string
  // false: it was forgotten before, by an earlier call
  now: boolean
}

// SPEC "Personal data": DELETE /subjects/{subject}. Step one, one transaction: the key is destroyed (or a tombstone
// recorded for a subject never seen), the subject's events are counted, the projections that applied any of them are
// recorded for a rebuild, and the aggregate snapshots of the streams holding them are deleted; its commit is
// the forget. Step two starts each rebuild (subject-rebuilds.ts), and a forget cut short between the two is finished
// at the next start. A kill before the commit leaves the key and everything else as it was (docs/personal-data.md).
export const forgetSubject = async (
  sql: Sql,
  runner: ProjectionRunner,
  keyring: Keyring,
  rebuilds: SubjectRebuilds,
  tenant: string,
  subject: string,
): Promise<ForgetResult> => {
  const { forgottenAt, now, events } = await sql.begin(async (tx) => {
    const forgotten = await destroyKey(tx, tenant, subject)
    if (!forgotten.now) return { ...forgotten, events: 0 }
    const events = await countEvents(tx, tenant, subject)
    if (events > 0) {
      await planRebuilds(tx, runner, tenant, subject)
      await deleteStreamSnapshots(tx, tenant, subject)
    }
    await tx`select pg_notify(${CHANNEL.subjects}, ${JSON.stringify([tenant, subject])})`
    return { ...forgotten, events }
  })
  keyring.evict(tenant, subject)
  if (!now) return { subject, forgottenAt, events: 0, rebuilds: [] }
  if (events > 0) await planRebuilds(sql, runner, tenant, subject)
  return { subject, forgottenAt, events, rebuilds: await rebuilds.startFor(tenant, subject) }
}

// The key row, updated (or inserted as a tombstone) under the subject's lock: an append of personal data holds it
// shared until it commits (sql/0019), so it is counted here, or it waits, finds the key gone and stores nothing.
const destroyKey = async (tx: Tx, tenant: string, subject: string): Promise<Forgotten> => {
  await tx`select pg_advisory_xact_lock(${LOCK_CLASS.subject}, hashtext(${tenant} || '/' || ${subject}))`
  const [destroyed] = await tx<{ forgottenAt: string }[]>`
    insert into subject_keys as k (tenant, subject, data_key, key_wrap, forgotten_at)
    values (${tenant}, ${subject}, null, null, now())
    on conflict (tenant, subject) do update
       set data_key = null, key_wrap = null, forgotten_at = now()
     where k.forgotten_at is null
    returning k.forgotten_at as "forgottenAt"`
  if (destroyed) return { forgottenAt: destroyed.forgottenAt, now: true }
  const [earlier] = await tx<{ forgottenAt: string }[]>`
    select forgotten_at as "forgottenAt" from subject_keys where tenant = ${tenant} and subject = ${subject}`
  return { forgottenAt: earlier!.forgottenAt, now: false }
}

// SPEC: `events` counts the subject's events that carry personal data
const countEvents = async (tx: Tx, tenant: string, subject: string): Promise<number> => {
  const [row] = await tx<{ count: number }[]>`
    select count(*)::int as count from events where tenant = ${tenant} and subject = ${subject} and personal_data is not null`
  return row?.count ?? 0
}

// Every projection whose source takes one of the subject's events is recorded for a rebuild, however far it got: a
// worker may have read an event before the forget committed and apply it after, so positions prove nothing. A code
// projection this instance has not loaded counts as taking every event. Run in the forget's transaction, and once
// more after its commit for a projection defined meanwhile (whose first batch may have read the events in clear).
const planRebuilds = async (sql: Sql | Tx, runner: ProjectionRunner, tenant: string, subject: string): Promise<void> => {
  const projections = await sql<{ name: string }[]>`select name from projections order by name`
  const applied: string[] = []
  for (const { name } of projections) {
    const projector = await projectorOf(sql, runner, name)
    const [hit] = await sql<{ hit: boolean }[]>`
      select exists (
        select from events
         where tenant = ${tenant}
           and subject = ${subject}
           and personal_data is not null
           ${projector ? sourceConditions(sql, sourceOf(projector)) : sql``}
      ) as hit`
    if (hit?.hit) applied.push(name)
  }
  if (applied.length === 0) return
  await sql`
    insert into subject_rebuilds (tenant, subject, projection)
    select ${tenant}, ${subject}, unnest(${applied}::text[])
    on conflict do nothing`
}

// SPEC: aggregate snapshots of streams holding the subject's events are deleted
const deleteStreamSnapshots = async (tx: Tx, tenant: string, subject: string): Promise<void> => {
  await tx`
    delete from stream_snapshots s
     where s.tenant = ${tenant}
       and s.stream_id in (select distinct stream_id from events where tenant = ${tenant} and subject = ${subject} and personal_data is not null)`
}
