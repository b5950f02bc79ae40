const TRANSIENT = new Set(['CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT', 'ECONNREFUSED', 'ECONNRESET', '57P01', '57P02', '57P03', '40001', '40P01'])

// The database being away (restarting, a dropped connection, a deadlock victim) is no fault of the
// events: such a batch is tried again later and never counts towards failing a projection or a backfill.
export const isTransient = (error: unknown): boolean => {
  const code = (error as { code?: unknown } | undefined)?.code
  return typeof code === 'string' && (TRANSIENT.has(code) || code.startsWith('08'))
}

export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))
