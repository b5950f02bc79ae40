export interface InputEvent {
  eventId?: string
  type: string
  data: unknown
  metadata?: Record<string, unknown>
  // data and metadata as the client sent them (json-body.ts): stored instead of re-encoding the values
  json?: { data?: string; metadata?: string } | undefined
}

export interface StoredEvent {
  globalPosition: number
  streamId: string
  streamVersion: number
  eventId: string
  type: string
  data: unknown
  metadata: Record<string, unknown>
  createdAt: string
}

export type ExpectedVersion = number | 'no_stream' | 'exists' | 'any'

export const SYSTEM_TENANT = '$'

export const isSystemStream = (streamId: string): boolean => streamId.startsWith('$')

// System streams are global: the same for every tenant, so they live under one reserved tenant.
export const storageTenant = (tenant: string, streamId: string): string =>
  isSystemStream(streamId) ? SYSTEM_TENANT : tenant

export const categoryOf = (streamId: string): string => streamId.split('-', 1)[0] ?? streamId

// A read names system streams through a `$` stream id, prefix or category; everything else reads the caller's own tenant.
export const readTenant = (tenant: string, scope: string | undefined): string =>
  scope !== undefined && isSystemStream(scope) ? SYSTEM_TENANT : tenant
