import { connect } from '../src/db/connect.js'
import type { BenchServer } from './bench-server.js'

export interface StoredOnce {
  acknowledged: number
  stored: number
  met: boolean
}

// Issue 12's end check for an append point: the events stored in its streams (a stream id prefix of its own) are
// exactly the events its appends were acknowledged for (seeding included), so none was lost and none stored twice;
// within a stream, (stream_id, stream_version) is unique, so a count equal to the acknowledged versions is each once.
export const storedOnce = async (server: BenchServer, prefix: string, acknowledged: number): Promise<StoredOnce> => {
  const sql = connect(server.databaseUrl, { max: 1, applicationName: 'annalist-bench' })
  try {
    const [row] = await sql<{ stored: number }[]>`
      select count(*)::int as stored from events where stream_id like ${`${prefix}-%`}`
    return { acknowledged, stored: row!.stored, met: row!.stored === acknowledged }
  } finally {
    await sql.end({ timeout: 5 })
  }
}

export const describeStoredOnce = ({ acknowledged, stored, met }: StoredOnce): string =>
  `nothing lost ${acknowledged.toLocaleString('en-US')} events acknowledged, ${stored.toLocaleString('en-US')} stored: ${met ? 'MET' : 'MISSED'}`
