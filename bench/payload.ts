import { readFileSync } from 'node:fs'
import path from 'node:path'

export interface BenchPayload {
  // one input event as JSON text, ready to splice into request bodies
  eventJson: string
  dataBytes: number
  metadataBytes: number
}

// The exact bytes the raw-SQL anchors insert, so "ours / anchor" compares the same rows.
export const loadPayload = (anchorsDir: string): BenchPayload => {
  const data = readFileSync(path.join(anchorsDir, 'payload.json'), 'utf8').trim()
  const metadata = readFileSync(path.join(anchorsDir, 'metadata.json'), 'utf8').trim()
  JSON.parse(data)
  JSON.parse(metadata)
  return {
    eventJson: `{"type":"OrderPlaced","data":${data},"metadata":${metadata}}`,
    dataBytes: Buffer.byteLength(data),
    metadataBytes: Buffer.byteLength(metadata),
  }
}

export const appendBody = (payload: BenchPayload, expectedVersion: number | string, count: number): string => {
  const expected = typeof expectedVersion === 'number' ? String(expectedVersion) : JSON.stringify(expectedVersion)
  return `{"expectedVersion":${expected},"events":[${new Array(count).fill(payload.eventJson).join(',')}]}`
}
