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
  to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "createdAt"`
