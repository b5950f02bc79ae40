import { api, post } from './api.js'
import { renderBackfills } from './backfills.js'
import { $, badge, cell, element, fillTable, formatNumber } from './format.js'

// Projections (status, lag and the management actions) and their backfills, read together so the two
// panels always show the same moment.

// SPEC "Management": what each action does, said in the confirmation before it is sent
const ACTIONS = [
  { action: 'stop', label: 'Stop', when: (p) => p.status !== 'stopped', says: 'stops applying events (the current batch commits first).' },
  { action: 'start', label: 'Start', when: (p) => p.status === 'stopped', says: 'resumes applying events from its position.' },
  { action: 'restart', label: 'Restart', when: () => true, says: 'runs it again and resumes its held tenants, each retrying the event it failed on.' },
  { action: 'skip', label: 'Skip', when: (p) => p.status === 'failed', says: 'moves each held tenant past the event it failed on (recorded as ProjectionSkippedEvent) and resumes it.' },
  { action: 'reset', label: 'Reset', when: () => true, says: 'clears its documents and replays every event in place; reads see it rebuilt from nothing.' },
  {
    action: 'rebuild',
    label: 'Rebuild',
    when: () => true,
    says: 'rebuilds it atomically from the whole log beside the live documents, and swaps the new generation in when it has caught up.',
    path: (name) => `/projections/${encodeURIComponent(name)}/backfills`,
    body: { criteria: 'full-rebuild', atomic: true },
  },
  { action: 'rollback', label: 'Roll back', when: () => true, says: 'swaps the previous generation (and its definition) back in.' },
]

const actionButtons = (projection, onAction) =>
  ACTIONS.filter(({ when }) => when(projection)).map((definition) => {
    const button = element('button', { className: `action action-${definition.action}`, text: definition.label, data: { action: definition.action } })
    button.type = 'button'
    button.addEventListener('click', () => onAction(projection.name, definition))
    return button
  })

const renderProjections = (projections, onAction) => {
  const rows = projections.map((projection) => {
    const status = cell('', undefined, 'Status')
    status.append(badge(projection.status))
    const actions = cell('', 'actions')
    actions.append(...actionButtons(projection, onAction))
    const row = element('tr', { data: { projection: projection.name, status: projection.status } })
    row.append(
      cell(projection.name, 'name'),
      cell(projection.kind, undefined, 'Kind'),
      status,
      cell(formatNumber(projection.position), 'num', 'Position'),
      cell(formatNumber(projection.head), 'num', 'Head'),
      cell(formatNumber(projection.lag), projection.lag > 0 ? 'num lagging' : 'num', 'Lag'),
      cell(formatNumber(projection.documents), 'num', 'Documents'),
      cell(projection.lastError ? `${projection.lastError.tenant ? `${projection.lastError.tenant} ` : ''}#${projection.lastError.position}: ${projection.lastError.message}` : '', 'error', 'Last error'),
      actions,
    )
    return row
  })
  fillTable($('#projections-section'), rows)
}

// Reads the projections and then each one's backfills, and draws both panels only once all have answered.
export const refreshProjections = async (signal, { sectionState, onAction, onProjections }) => {
  const section = $('#projections-section')
  const backfillSection = $('#backfills-section')
  let projections
  try {
    projections = (await api('/projections', signal)).projections
  } catch (error) {
    if (signal.aborted) return
    sectionState(section, error)
    sectionState(backfillSection, error)
    return
  }
  const lists = await Promise.allSettled(
    projections.map((projection) => api(`/projections/${encodeURIComponent(projection.name)}/backfills`, signal)),
  )
  if (signal.aborted) return
  sectionState(section, null)
  renderProjections(projections, onAction)
  // a projection deleted since the list was read has no backfills to show; anything else is worth saying
  const failed = lists.find((list) => list.status === 'rejected' && list.reason.status !== 404)
  sectionState(backfillSection, failed?.reason ?? null)
  renderBackfills(lists, signal)
  onProjections(projections)
}

// The action, confirmed in the dialog, then sent; the answer (the projection's status after it, or the
// problem) is shown under the table.
export const runAction = async (name, definition, { confirm, explain, refresh }) => {
  if (!(await confirm(`${definition.label} projection ${name}?`, `This ${definition.says}`))) return
  const result = $('#action-result')
  result.hidden = false
  result.dataset.state = 'pending'
  result.textContent = `${definition.label} ${name}…`
  const path = definition.path?.(name) ?? `/projections/${encodeURIComponent(name)}/${definition.action}`
  try {
    const { status, body } = await post(path, definition.body)
    result.dataset.state = 'done'
    result.textContent = definition.action === 'rebuild'
      ? `${definition.label} ${name}: ${status}, backfill ${body.id} ${body.status}.`
      : `${definition.label} ${name}: ${status}, the projection is now ${body.status}.`
  } catch (error) {
    result.dataset.state = 'failed'
    result.textContent = `${definition.label} ${name} was refused: ${explain(error)}${error.problem?.code ? ` (${error.problem.code})` : ''}`
  }
  refresh()
}
