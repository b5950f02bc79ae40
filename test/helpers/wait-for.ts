import { setTimeout as delay } from 'node:timers/promises'

export interface WaitOptions {
  timeoutMs?: number
  intervalMs?: number
}

// Polls a condition until it holds (returns a value other than false/undefined) or the deadline passes.
// Tests synchronise on conditions, never on fixed sleeps.
export const waitFor = async <T>(
  what: string,
  condition: () => T | false | undefined | Promise<T | false | undefined>,
  { timeoutMs = 10_000, intervalMs = 10 }: WaitOptions = {},
): Promise<T> => {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (let round = 0; round < 1_000_000; round++) {
    try {
      const value = await condition()
      if (value !== false && value !== undefined) return value
    } catch (error) {
      lastError = error
    }
    if (Date.now() >= deadline) break
    await delay(intervalMs)
  }
  const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : ''
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`)
}
