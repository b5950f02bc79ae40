import { benchAppendSingle } from './append-single.js'
import type { BenchServer } from './bench-server.js'
import type { LoadResult } from './load.js'
import type { BenchPayload } from './payload.js'
import { benchReadStream, type ReadStreamResult } from './read-stream.js'

// A person's details as an application would put them in personalData (issue 14): about as many bytes as the data.
const PERSONAL_DATA = JSON.stringify({
  name: 'Ada Lovelace',
  email: 'ada.lovelace@example.com',
  phone: '+44 20 7946 0000',
  address: { street: '12 St James Square', city: 'London', postcode: 'SW1Y 4JH', country: 'GB' },
  birthDate: '1815-12-10',
})

// The bench event with a subject and personalData beside its data and metadata: the appends seal it, every read opens it.
export const personalPayload = (payload: BenchPayload, subject = 'customer-42'): BenchPayload => ({
  ...payload,
  eventJson: `${payload.eventJson.slice(0, -1)},"subject":"${subject}","personalData":${PERSONAL_DATA}}`,
})

export const PERSONAL_DATA_BYTES = Buffer.byteLength(PERSONAL_DATA)

export interface PersonalDataResult {
  // single-event appends without, with, and again without personalData, one after the other on the same server
  plain: LoadResult
  personal: LoadResult
  plainAgain: LoadResult
  // a 10,000-event stream read whole, without and with personalData on every event (one subject)
  plainRead: ReadStreamResult
  personalRead: ReadStreamResult
}

export const benchPersonalData = async (
  server: BenchServer,
  payload: BenchPayload,
  options: { connections: number; warmupMs: number; durationMs: number; reads: number },
): Promise<PersonalDataResult> => {
  const load = { connections: options.connections, warmupMs: options.warmupMs, durationMs: options.durationMs }
  const plain = await benchAppendSingle(server, payload, { ...load, prefix: 'pd-plain' })
  const personal = await benchAppendSingle(server, personalPayload(payload), { ...load, prefix: 'pd-personal' })
  const plainAgain = await benchAppendSingle(server, payload, { ...load, prefix: 'pd-plain-again' })
  const plainRead = await benchReadStream(server, payload, { reads: options.reads, warmupReads: 3, streamId: 'read-plain' })
  const personalRead = await benchReadStream(server, personalPayload(payload), { reads: options.reads, warmupReads: 3, streamId: 'read-personal' })
  return { plain, personal, plainAgain, plainRead, personalRead }
}
