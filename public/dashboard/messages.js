import { credentials } from './api.js'
import { $ } from './format.js'

// Messages: the banner, each panel's own message, and the confirmation dialog.

export const banner = (text) => {
  const node = $('#banner')
  node.textContent = text ?? ''
  node.hidden = !text
}

export const explain = (error) => {
  if (error.status === 401) return credentials.key ? 'This key was not accepted: enter a valid API key above.' : 'This server needs an API key: enter one above to see its data.'
  if (error.status === 403) return credentials.key ? `This key may not do this: ${error.message}` : `Forbidden: ${error.message}`
  if (error.status) return `The server answered ${error.status}: ${error.message}`
  return `The server cannot be reached (${error.message}).`
}

// A 401 concerns every panel alike, so it is said once, in the banner, and the panels stay quiet; a 403 or
// any other failure is said in the panel it concerns. Any answer showing the key was taken clears the banner.
export const sectionState = (section, error) => {
  const message = $('.message', section)
  const own = error && error.status !== 401
  message.textContent = own ? explain(error) : ''
  message.hidden = !own
  message.classList.toggle('auth', error?.status === 403)
  section.classList.toggle('locked', error?.status === 401)
  if (error?.status === 401) banner(explain(error))
  else if (!error || error.status === 403) banner(null)
}

// --- the confirmation dialog --------------------------------------------------------------------------

export const confirmAction = (title, text) =>
  new Promise((resolve) => {
    const dialog = $('#confirm')
    $('#confirm-title').textContent = title
    $('#confirm-text').textContent = text
    dialog.returnValue = ''
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true })
    dialog.showModal()
  })
