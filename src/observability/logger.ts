import type { LoggerOptions } from 'pino'

// One JSON line per request (see app.ts). Keys and event payloads never reach the log at info.
export const loggerOptions = (level: string): LoggerOptions => ({
  level,
  redact: {
    paths: ['req.headers.authorization', 'headers.authorization', 'authorization', 'body', 'req.body'],
    censor: '[redacted]',
  },
})
