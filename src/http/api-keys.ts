import { createHash, timingSafeEqual } from 'node:crypto'

export type Role = 'read' | 'write' | 'admin'

export const ROLE_RANK: Record<Role, number> = { read: 1, write: 2, admin: 3 }

// What a request learns about the key it presented; `id` names the key in logs and limits, never the key itself.
export interface ApiKey {
  id: string
  // `*` only for admin keys (SPEC "Security")
  tenant: string
  role: Role
}

const digest = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest()

// The API_KEYS entries, already checked by config.ts. Lookups compare fixed-length digests with
// timingSafeEqual against every entry, so neither a key's length nor how much of it matched shows in the time taken.
export class ApiKeys {
  readonly #entries: { digest: Buffer; key: ApiKey }[]

  constructor(text: string | undefined) {
    this.#entries = (text ?? '').split(',').filter(Boolean).map((entry, index) => {
      const [key, tenant, role] = entry.split(':') as [string, string, Role]
      return { digest: digest(key), key: { id: `key-${index + 1}`, tenant, role } }
    })
  }

  // With no keys configured the server is open: every caller acts as admin.
  get open(): boolean {
    return this.#entries.length === 0
  }

  find(presented: string): ApiKey | undefined {
    const wanted = digest(presented)
    let found: ApiKey | undefined
    for (const entry of this.#entries) {
      if (timingSafeEqual(entry.digest, wanted) && !found) found = entry.key
    }
    return found
  }
}
