export const SYSTEM_TENANT = '$'

export const isSystemStream = (streamId: string): boolean => streamId.startsWith('$')

// System streams are global: the same for every tenant, so they live under one reserved tenant.
export const storageTenant = (tenant: string, streamId: string): string =>
  isSystemStream(streamId) ? SYSTEM_TENANT : tenant

export const categoryOf = (streamId: string): string => streamId.split('-', 1)[0] ?? streamId

// A read names system streams through a `$` stream id, prefix or category; everything else reads the caller's own tenant.
export const readTenant = (tenant: string, scope: string | undefined): string =>
  scope !== undefined && isSystemStream(scope) ? SYSTEM_TENANT : tenant
