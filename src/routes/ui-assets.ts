// The status page's only script and stylesheet, served inline under a per-response CSP nonce.

/** sessionStorage key of the admin token (a tab's lifetime; never a cookie, never localStorage). */
export const TOKEN_STORAGE_KEY = 'plugin-gateway.admin-token'

export const UI_SCRIPT = `(() => {
  'use strict'
  const KEY = ${JSON.stringify(TOKEN_STORAGE_KEY)}
  const body = document.body
  const base = body.dataset.base
  const status = document.getElementById('status')
  const say = (text) => { if (status) status.textContent = text }
  const openWith = (token) => location.replace(base + '/ui?token=' + encodeURIComponent(token))

  if (body.dataset.page === 'unlock') {
    // A browser reload arrives without the token: reopen with the one this tab kept, once.
    if (body.dataset.rejected === '1') sessionStorage.removeItem(KEY)
    const saved = sessionStorage.getItem(KEY)
    if (saved) return openWith(saved)
    document.getElementById('unlock').addEventListener('submit', (ev) => {
      ev.preventDefault()
      const token = ev.target.elements.token.value.trim()
      if (!token) return
      sessionStorage.setItem(KEY, token)
      openWith(token)
    })
    return
  }

  // A token that came in the URL moves to sessionStorage and leaves the address bar and history.
  const url = new URL(location.href)
  const fromUrl = url.searchParams.get('token')
  if (fromUrl !== null) {
    sessionStorage.setItem(KEY, fromUrl)
    url.searchParams.delete('token')
    history.replaceState(null, '', url.pathname + url.search + url.hash)
  }
  const token = sessionStorage.getItem(KEY)
  const headers = token ? { authorization: 'Bearer ' + token } : {}
  const panel = document.getElementById('panel')
  const everyMs = Number(body.dataset.refreshMs) || 2000
  let timer = 0
  let latest = 0

  async function refresh() {
    clearTimeout(timer)
    const seq = ++latest
    try {
      const res = await fetch(base + '/ui/panel', { headers, cache: 'no-store' })
      if (res.status === 401) return location.replace(base + '/ui')
      if (!res.ok) throw new Error('HTTP ' + res.status)
      const html = await res.text()
      // Only the newest refresh may paint: an older one started before a stop would bring a stale row back.
      if (seq === latest) panel.innerHTML = html
      say('')
    } catch (err) {
      say('refresh failed: ' + err.message)
    }
    if (seq === latest) timer = setTimeout(refresh, everyMs)
  }

  // What a rescan changed, in one line.
  const rescanned = (r) => 'rescan: ' + ['added', 'changed', 'removed', 'invalid']
    .map((k) => k + ' ' + (r[k].length === 0 ? '-' : r[k].map((p) => (typeof p === 'string' ? p : p.id)).join(', ')))
    .join('; ')

  async function act(action, path, label) {
    const res = await fetch(base + path, { method: 'POST', headers })
    const reply = await res.json().catch(() => null)
    if (!res.ok) return label + ' failed: ' + (reply && reply.error ? reply.error.code + ' ' + reply.error.message : 'HTTP ' + res.status)
    return action === 'rescan' && reply ? rescanned(reply) : ''
  }

  document.addEventListener('click', async (ev) => {
    const button = ev.target.closest('button[data-action]')
    if (!button) return
    button.disabled = true
    const { action, path, label } = button.dataset
    say(label + '…')
    const note = await act(action, path, label).catch((err) => label + ' failed: ' + err.message)
    await refresh()
    say(note)
  })
  timer = setTimeout(refresh, everyMs)
})()
`

export const UI_STYLE = `
:root { color-scheme: light dark; font: 14px/1.4 system-ui, sans-serif; }
body { margin: 0 auto; max-width: 72rem; padding: 1rem 1.5rem; }
header { display: flex; gap: 1rem; align-items: baseline; }
h1 { font-size: 1.3rem; margin: 0; }
h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
h3 { font-size: .95rem; margin: 1rem 0 .25rem; }
#status { color: #b45309; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #8884; white-space: nowrap; }
td.error { white-space: normal; color: #b91c1c; }
.badge { padding: .05rem .45rem; border-radius: .6rem; font-size: .8rem; background: #8882; }
.s-fresh, .s-ready { background: #16a34a33; }
.s-stale, .s-starting, .s-stopping { background: #ca8a0433; }
.s-error, .s-missing { background: #dc262633; }
.muted { color: #888; }
button { font: inherit; padding: .1rem .6rem; cursor: pointer; }
form input { font: inherit; padding: .3rem; width: 24rem; }
`
