import { Problem } from '../problems.js'
import type { Sql } from '../db/connect.js'
import type { SubjectStatus } from './schemas.js'

export const subjectNotFound = (subject: string): Problem =>
  new Problem('subject-not-found', { subject }, `no event has named subject ${subject}, and it was never forgotten`)

// SPEC "Personal data": GET /subjects/{subject}. `events` counts the subject's events that carry personal data;
// `pending` names the projections that have not completed a full rebuild since the forget (its own, or one that
// superseded it, such as a changed definition's).
export const getSubject = async (sql: Sql, tenant: string, subject: string): Promise<SubjectStatus> => {
  const [row] = await sql<{ named: boolean; events: number; forgottenAt: string | null; pending: string[] }[]>`
    select exists (select from events where tenant = ${tenant} and subject = ${subject}) as named,
           (select count(*) from events where tenant = ${tenant} and subject = ${subject} and personal_data is not null)::int as events,
           k.forgotten_at as "forgottenAt",
           array(select r.projection
                   from subject_rebuilds r
                  where r.tenant = ${tenant}
                    and r.subject = ${subject}
                    and not exists (
                      select from projection_backfills b
                       where b.projection = r.projection
                         and b.status = 'completed'
                         and b.request ->> 'criteria' = 'full-rebuild'
                         and b.created_at >= r.created_at)
                  order by r.projection) as pending
      from (select) as one
      left join subject_keys k on k.tenant = ${tenant} and k.subject = ${subject}`
  // a key created for an append that then failed (a wrong expected version) names nothing
  if (!row || (!row.named && row.forgottenAt === null)) throw subjectNotFound(subject)
  return { subject, events: row.events, forgotten: row.forgottenAt !== null, forgottenAt: row.forgottenAt, pending: row.pending }
}
