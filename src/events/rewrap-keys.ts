import type { Sql } from '../db/connect.js'
import type { Keyring, StoredKey } from './keyring.js'

const BATCH = 500

interface KeyRow extends StoredKey {
  tenant: string
  subject: string
}

// Rotating the master key (docs/personal-data.md, "Rotating the master key"): every data key not wrapped with the
// current ENCRYPTION_KEY (wrapped with ENCRYPTION_KEY_PREVIOUS, or stored unwrapped before a master key was set) is
// wrapped again with it. Each row changes only if it still holds what was read (a forget, or another instance doing the
// same, may have changed it meanwhile), so instances may run this side by side. A key wrapped with a master key this
// server was not given is left as it is and counted as skipped.
export const rewrapDataKeys = async (sql: Sql, keyring: Keyring): Promise<{ rewrapped: number; skipped: number }> => {
  const current = keyring.currentWrap
  let rewrapped = 0
  let skipped = 0
  let after = { tenant: '', subject: '' }
  for (;;) {
    const rows = await sql<KeyRow[]>`
      select tenant, subject, data_key as "dataKey", key_wrap as "keyWrap"
        from subject_keys
       where data_key is not null
         and key_wrap is distinct from ${current}
         and (tenant, subject) > (${after.tenant}, ${after.subject})
       order by tenant, subject
       limit ${BATCH}`
    for (const row of rows) {
      let next: StoredKey | null
      try {
        next = keyring.rewrap(row)
      } catch {
        skipped++
        continue
      }
      if (!next) continue
      const changed = await sql`
        update subject_keys
           set data_key = ${next.dataKey}, key_wrap = ${next.keyWrap}
         where tenant = ${row.tenant}
           and subject = ${row.subject}
           and data_key = ${row.dataKey}
        returning tenant`
      rewrapped += changed.length
    }
    const last = rows.at(-1)
    if (!last || rows.length < BATCH) return { rewrapped, skipped }
    after = { tenant: last.tenant, subject: last.subject }
  }
}
