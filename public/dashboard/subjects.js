// The subject panel: a subject's status when asked (SPEC "Personal data", GET /subjects/{subject}); forgetting
// stays an API call.

import { api } from './api.js'
import { $, element, formatDateTime, formatNumber } from './format.js'
import { sectionState } from './messages.js'

export const showSubject = async (subject) => {
  const section = $('#subject-section')
  const list = $('#subject-status')
  list.hidden = true
  if (subject === '') return sectionState(section, null)
  try {
    const status = await api(`/subjects/${encodeURIComponent(subject)}`)
    sectionState(section, null)
    const rows = [
      ['Subject', status.subject],
      ['Events with personal data', formatNumber(status.events)],
      ['Forgotten', status.forgotten ? `yes, ${formatDateTime(status.forgottenAt)}` : 'no'],
      ['Rebuilds pending', status.pending.length === 0 ? 'none' : status.pending.join(', ')],
    ]
    list.replaceChildren(...rows.flatMap(([term, value]) => [element('dt', { text: term }), element('dd', { text: value })]))
    list.hidden = false
  } catch (error) {
    sectionState(section, error)
  }
}
