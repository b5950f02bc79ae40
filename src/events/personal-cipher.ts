import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'

// SPEC "Personal data": authenticated encryption, AES-256-GCM from node:crypto. A sealed value is
// version (1 byte) | IV (12) | tag (16) | ciphertext; the IV is random per value, so one key seals any number of them.
const VERSION = 1
const IV_BYTES = 12
const TAG_BYTES = 16
const HEADER_BYTES = 1 + IV_BYTES + TAG_BYTES
export const KEY_BYTES = 32

export const newKey = (): Buffer => randomBytes(KEY_BYTES)

// `context` is authenticated, not stored: a value sealed for one tenant and subject cannot be opened as another's.
export const seal = (key: Buffer, plain: Buffer, context: string): Buffer => {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(Buffer.from(context))
  const body = Buffer.concat([cipher.update(plain), cipher.final()])
  return Buffer.concat([Buffer.of(VERSION), iv, cipher.getAuthTag(), body])
}

// Throws when the value was sealed under another key or context, or was changed.
export const unseal = (key: Buffer, sealed: Buffer, context: string): Buffer => {
  if (sealed.length < HEADER_BYTES || sealed[0] !== VERSION) throw new Error('not a sealed value')
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(1, 1 + IV_BYTES))
  decipher.setAAD(Buffer.from(context))
  decipher.setAuthTag(sealed.subarray(1 + IV_BYTES, HEADER_BYTES))
  return Buffer.concat([decipher.update(sealed.subarray(HEADER_BYTES)), decipher.final()])
}

// Names a master key in subject_keys.key_wrap without revealing anything about it.
export const fingerprintOf = (masterKey: Buffer): string =>
  createHash('sha256').update('annalist master key\u0000').update(masterKey).digest('hex').slice(0, 16)
