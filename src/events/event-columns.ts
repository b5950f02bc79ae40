import type { Sql } from '../db/connect.js'

export const eventColumns = (sql: Sql) => sql`
  global_position as "globalPosition",
  stream_id as "streamId",
  stream_version as "streamVersion",
  event_id as "eventId",
  type,
  data,
  metadata,
  created_at as "createdAt"`

// An event's subject, sealed personal data and its subject's stored data key, as Keyring.reveal takes them; null
// (and nothing looked up) for an event without a subject. The key comes from the same statement as the event, so
// a read after a forget finds it destroyed on any instance. Only for the rows of a page (event-page.ts: `events`).
export const personalColumn = (sql: Sql) => sql`
  case when events.subject is null then null else json_build_array(
    events.tenant,
    events.subject,
    encode(events.personal_data, 'base64'),
    (select json_build_array(encode(k.data_key, 'hex'), k.key_wrap)
       from subject_keys k
      where events.personal_data is not null
        and k.tenant = events.tenant
        and k.subject = events.subject)
  )::text end as personal`

// The same columns with data and metadata as their stored JSON text and createdAt spelled as
// toISOString() spells it: for readers that pass events on without parsing them (event-json.ts).
export const eventTextColumns = (sql: Sql) => sql`
  global_position as "globalPosition",
  stream_id as "streamId",
  stream_version as "streamVersion",
  event_id as "eventId",
  type,
  data::text as data,
  metadata::text as metadata,
  to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "createdAt",
  ${personalColumn(sql)}`
