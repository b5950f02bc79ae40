// Small DOM and text helpers shared by the panels.

export const $ = (selector, root = document) => root.querySelector(selector)

const number = new Intl.NumberFormat()
export const formatNumber = (value) => (value === null || value === undefined ? '–' : number.format(value))
export const formatTime = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '–')
export const formatDateTime = (iso) => (iso ? new Date(iso).toLocaleString() : '–')
export const formatDuration = (seconds) => {
  if (seconds === null || seconds === undefined) return '–'
  if (seconds < 60) return `${Math.ceil(seconds)} s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`
}

// c-2 before c-10: digits compare as numbers
export const naturalOrder = new Intl.Collator(undefined, { numeric: true, sensitivity: 'variant' }).compare

export const element = (tag, { className, text, title, data } = {}, children = []) => {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  if (title) node.title = title
  for (const [key, value] of Object.entries(data ?? {})) node.dataset[key] = value
  node.append(...children)
  return node
}

// `label` names the column on narrow screens, where table rows become cards (dashboard.css)
export const cell = (text, className, label) => {
  const td = element('td', { className, text })
  if (label) td.dataset.label = label
  return td
}

export const badge = (status) => element('span', { className: `badge status-${status}`, text: status })

export const fillTable = (section, rows) => {
  $('tbody', section).replaceChildren(...rows)
  $('table', section).hidden = rows.length === 0
  $('.empty', section).hidden = rows.length !== 0
}

// Event data and metadata as the server sent them, indented
export const jsonBlock = (value, className) => element('pre', { className: `json ${className ?? ''}`.trim(), text: JSON.stringify(value, null, 2) })
