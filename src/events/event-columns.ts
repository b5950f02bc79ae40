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
