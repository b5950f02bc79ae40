import { randomUUID } from 'node:crypto'
import type { InputEvent } from '../../src/events/schemas.js'

export const event = (type = 'OrderPlaced', data: unknown = { total: 1 }, extra: Partial<InputEvent> = {}): InputEvent => ({
  type,
  data,
  ...extra,
})

export const withId = (input: InputEvent): InputEvent => ({ ...input, eventId: randomUUID() })

export const events = (count: number, type = 'OrderPlaced'): InputEvent[] =>
  Array.from({ length: count }, (_, index) => event(type, { index }))

export const streamId = (category = 'order'): string => `${category}-${randomUUID().slice(0, 8)}`
