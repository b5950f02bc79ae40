import type { Sql, Tx } from '../db/connect.js'
import { Problem } from '../problems.js'
import type { ConsumerGroupDefinition, ConsumerGroupSource, ConsumerGroupStart, ConsumerGroupStatus } from './schemas.js'

const DEFAULT_ACK_TIMEOUT_MS = 30_000
const DEFAULT_MAX_DELIVERIES = 5

// A group as the core works with it: its configuration and how far its scan of the log has come.
export interface GroupRow {
  id: number
  tenant: string
  name: string
  source: ConsumerGroupSource
  start: ConsumerGroupStart
  ackTimeoutMs: number
  maxDeliveries: number
  scanned: number
  createdAt: string
}

const groupColumns = (sql: Sql | Tx) => sql`
  id, tenant, name, source, start,
  ack_timeout_ms as "ackTimeoutMs",
  max_deliveries as "maxDeliveries",
  scanned,
  created_at as "createdAt"`

export const groupNotFound = (name: string): Problem =>
  new Problem('consumer-group-not-found', { name }, `there is no consumer group ${name}`)

export const findGroup = async (sql: Sql | Tx, tenant: string, name: string): Promise<GroupRow | undefined> => {
  const [row] = await sql<GroupRow[]>`select ${groupColumns(sql)} from consumer_groups where tenant = ${tenant} and name = ${name}`
  return row
}

// SPEC "Consumer groups": an unknown group is 404 consumer-group-not-found on every route.
export const getGroup = async (sql: Sql | Tx, tenant: string, name: string): Promise<GroupRow> => {
  const row = await findGroup(sql, tenant, name)
  if (!row) throw groupNotFound(name)
  return row
}

export const listGroups = (sql: Sql, tenant?: string): Promise<GroupRow[]> => sql<GroupRow[]>`
  select ${groupColumns(sql)} from consumer_groups ${tenant === undefined ? sql`` : sql`where tenant = ${tenant}`} order by tenant, name`

// Every group's status (of one tenant, or of all), each with its tenant. A group deleted between the list and its
// status is left out, as a list read a moment later would leave it out: never a 404 for a list.
export const listGroupStatuses = async (sql: Sql, tenant: string | undefined, head: number): Promise<(ConsumerGroupStatus & { tenant: string })[]> => {
  const statuses = await Promise.all((await listGroups(sql, tenant)).map((group) =>
    groupStatus(sql, group, head).then(
      (status) => ({ ...status, tenant: group.tenant }),
      (error: unknown) => {
        if (error instanceof Problem && error.code === 'consumer-group-not-found') return undefined
        throw error
      },
    )))
  return statuses.filter((status) => status !== undefined)
}

// Fields in one order, absent ones left out: two sources are the same when their JSON is.
const normalSource = (source: ConsumerGroupSource = {}): ConsumerGroupSource => ({
  ...(source.types ? { types: source.types } : {}),
  ...(source.categories ? { categories: source.categories } : {}),
  ...(source.streamIdPrefix !== undefined ? { streamIdPrefix: source.streamIdPrefix } : {}),
})

const startPosition = (start: ConsumerGroupStart, head: number): number => (start === 'beginning' ? 0 : start === 'end' ? head : start)

const insertGroup = async (tx: Tx, tenant: string, name: string, definition: ConsumerGroupDefinition, head: number): Promise<boolean> => {
  const source = normalSource(definition.source)
  const start = definition.start ?? 'beginning'
  const inserted = await tx`
    insert into consumer_groups (tenant, name, source, start, types, categories, stream_id_prefix, ack_timeout_ms, max_deliveries, scanned)
    values (${tenant}, ${name}, ${tx.json(source)}, ${tx.json(start)}, ${source.types ?? null}, ${source.categories ?? null},
            ${source.streamIdPrefix ?? null}, ${definition.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS},
            ${definition.maxDeliveries ?? DEFAULT_MAX_DELIVERIES}, ${startPosition(start, head)})
    on conflict (tenant, name) do nothing
    returning id`
  return inserted.length === 1
}

// PUT: `201` when the group is new, `200` when it exists; `source` and `start` are fixed at creation (a PUT naming other
// ones is `409 conflict`); fields left out keep their values. `start: "end"` is the gap-safe head now. The status is
// read in the same transaction, under the row's lock, so a DELETE racing the PUT cannot make it answer 404; a group
// deleted between the insert that found it and the lock is created again, as any upsert would.
export const defineGroup = (sql: Sql, tenant: string, name: string, definition: ConsumerGroupDefinition, head: number): Promise<{ created: boolean; status: ConsumerGroupStatus }> =>
  sql.begin(async (tx) => {
    for (;;) {
      if (await insertGroup(tx, tenant, name, definition, head)) return { created: true, status: await groupStatus(tx, (await getGroup(tx, tenant, name)), head) }
      const [existing] = await tx<GroupRow[]>`select ${groupColumns(tx)} from consumer_groups where tenant = ${tenant} and name = ${name} for update`
      if (existing) return { created: false, status: await changeGroup(tx, existing, definition, head) }
    }
  })

const changeGroup = async (tx: Tx, existing: GroupRow, definition: ConsumerGroupDefinition, head: number): Promise<ConsumerGroupStatus> => {
  const { name } = existing
  if (definition.source !== undefined && JSON.stringify(normalSource(definition.source)) !== JSON.stringify(normalSource(existing.source))) {
    throw new Problem('conflict', { source: existing.source }, `the source of consumer group ${name} is fixed at creation`)
  }
  if (definition.start !== undefined && definition.start !== existing.start) {
    throw new Problem('conflict', { start: existing.start }, `the start of consumer group ${name} is fixed at creation`)
  }
  const ackTimeoutMs = definition.ackTimeoutMs ?? existing.ackTimeoutMs
  const maxDeliveries = definition.maxDeliveries ?? existing.maxDeliveries
  await tx`update consumer_groups set ack_timeout_ms = ${ackTimeoutMs}, max_deliveries = ${maxDeliveries} where id = ${existing.id}`
  return groupStatus(tx, { ...existing, ackTimeoutMs, maxDeliveries }, head)
}

export const deleteGroup = async (sql: Sql, tenant: string, name: string): Promise<void> => {
  const deleted = await sql`delete from consumer_groups where tenant = ${tenant} and name = ${name} returning id`
  if (deleted.length === 0) throw groupNotFound(name)
}

interface Counts {
  next: number | null
  inFlight: number
  parked: number
  delivered: number
  acked: number
  scanned: number
}

// position: every matching event at or below it is acked or parked, that is below the first pending event of
// every stream, and within what the group has scanned (SPEC "Consumer groups").
export const groupStatus = async (sql: Sql | Tx, group: GroupRow, head: number): Promise<ConsumerGroupStatus> => {
  const [counts] = await sql<Counts[]>`
    select (select min(next_position) from consumer_group_streams where group_id = g.id and next_position is not null) as next,
           (select count(*)::int
              from consumer_group_events e
              join consumer_group_streams s on s.group_id = e.group_id and s.stream_id = e.stream_id
             where e.group_id = g.id and e.state = 'pending' and e.attempts >= 0 and s.leased_until > clock_timestamp()
               and e.global_position between s.leased_from and s.leased_to) as "inFlight",
           (select count(*)::int from consumer_group_events where group_id = g.id and state = 'parked') as parked,
           g.delivered + coalesce((select sum(delivered) from consumer_group_streams where group_id = g.id), 0)::bigint as delivered,
           g.acked + coalesce((select sum(acked) from consumer_group_streams where group_id = g.id), 0)::bigint as acked,
           g.scanned
      from consumer_groups g
     where g.id = ${group.id}`
  if (!counts) throw groupNotFound(group.name)
  const position = counts.next === null ? counts.scanned : Math.min(counts.next - 1, counts.scanned)
  const { name, source, start, ackTimeoutMs, maxDeliveries, createdAt } = group
  const { inFlight, parked, delivered, acked } = counts
  return { name, source, start, ackTimeoutMs, maxDeliveries, position, head, lag: Math.max(0, head - position), inFlight, parked, delivered, acked, createdAt }
}
