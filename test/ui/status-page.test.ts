import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { copyPlugin, EXAMPLES_DIR, exitOf, FIXTURES_DIR, startTestGateway, tempDir, type TestGateway } from '../helpers/gateway.js'

const TOKEN = 'status-page-token-0123456789'
// Debian's package, which .ci/run installs; CHROMIUM_PATH points elsewhere (or, to check this
// guard itself, at nothing). On CI a missing browser fails the run; locally the suite says loudly
// that it skipped the browser tests.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const hasBrowser = existsSync(CHROMIUM)
const onCI = !['', '0', 'false'].includes(process.env.CI ?? '')
const NO_BROWSER = `no browser at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`
if (!hasBrowser && !onCI) console.warn(`\n*** SKIPPING the status page tests in Chromium: ${NO_BROWSER} ***\n`)

// Markup a plugin controls, and would run if the page ever pasted it in unescaped (the handler is
// also what the CSP would have to block: the test checks the text is shown, not only that nothing ran).
const XSS = `<img src=x onerror="window.xssRan=(window.xssRan||0)+1">`

/**
 * Plugins whose own text reaches the page: an onStart that throws it (lastError, from stderr), a
 * config field named with it (the metadata error), a version with it, and an entry path with it
 * (an invalid plugin's error).
 */
async function hostilePlugins(): Promise<string> {
  const dir = join(await tempDir(), 'plugins')
  const write = async (id: string, manifest: object, code = '') => {
    await copyPlugin(join(FIXTURES_DIR, 'fixture-ok'), dir, id) // a plugin dir that resolves the SDK, rewritten below
    await writeFile(join(dir, id, 'package.json'), JSON.stringify({ name: `hay-plugin-${id}`, type: 'module', ...manifest }))
    await writeFile(join(dir, id, 'index.js'), code)
  }
  const plugin = { 'hay-plugin': { entry: './index.js', category: 'tool', capabilities: ['routes'] } }
  const sdk = "import { defineHayPlugin } from '@plugin-gateway/sdk'\n"
  await write(
    'xss-start',
    plugin,
    `${sdk}export default defineHayPlugin(() => ({ name: 'x', onStart() { throw new Error(${JSON.stringify(XSS)}) } }))\n`,
  )
  await write(
    'xss-metadata',
    plugin,
    `${sdk}export default defineHayPlugin(() => ({ name: 'x', onInitialize({ register }) { register.config({ ${JSON.stringify(XSS)}: { type: 'banana', label: 'x' } }); register.route('GET', '/ping', (_q, r) => r.json({})) } }))\n`,
  )
  await write('xss-version', { ...plugin, version: `1.0.0${XSS}` }, `${sdk}export default defineHayPlugin(() => ({ name: 'x' }))\n`)
  await write('xss-entry', { 'hay-plugin': { entry: `./${XSS}.js`, category: 'tool', capabilities: ['routes'] } })
  return dir
}

const html = (t: TestGateway, path: string, headers: Record<string, string> = {}) =>
  fetch(`${t.url}${path}`, { headers: { accept: 'text/html', ...headers } })

describe('status page over HTTP', () => {
  it('is guarded like the admin API: JSON 401 for API clients, an unlock page for browsers', async () => {
    const t = await startTestGateway({ env: { ADMIN_TOKEN: TOKEN } })
    const api = await fetch(`${t.url}/admin/ui`)
    expect(api.status).toBe(401)
    expect(await api.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } })
    const panel = await fetch(`${t.url}/admin/ui/panel`, { headers: { accept: 'text/html' } })
    expect(panel.status).toBe(401) // only the page itself offers the unlock form

    const browser = await html(t, '/admin/ui')
    expect(browser.status).toBe(401)
    const body = await browser.text()
    expect(body).toContain('<form id="unlock">')
    expect(body).not.toContain('echo') // nothing about the gateway before the token
    const rejected = await html(t, '/admin/ui?token=wrong-token-0123456789')
    expect(await rejected.text()).toContain('data-rejected="1"')
  })

  it('renders plugins with metadata state, and sends a strict CSP with a fresh nonce', async () => {
    const t = await startTestGateway({ env: { ADMIN_TOKEN: TOKEN } })
    const res = await html(t, '/admin/ui', { authorization: `Bearer ${TOKEN}` })
    expect(res.status).toBe(200)
    const csp = res.headers.get('content-security-policy') ?? ''
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1]
    expect(nonce).toBeTruthy()
    expect(csp).toContain("frame-ancestors 'none'")
    expect(res.headers.get('referrer-policy')).toBe('no-referrer')
    const body = await res.text()
    expect(body.startsWith('<!doctype html>')).toBe(true)
    expect(body).toContain(`<script nonce="${nonce}">`)
    expect(body).toMatch(/<tr data-plugin="echo">.*?<span class="badge s-missing">missing<\/span>/)

    const again = await html(t, '/admin/ui', { authorization: `Bearer ${TOKEN}` })
    expect(again.headers.get('content-security-policy')).not.toContain(nonce!)
  })

  it('answers loopback clients without a token when ADMIN_TOKEN is unset', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'echo')
    const res = await fetch(`${t.url}/admin/ui/panel`)
    expect(res.status).toBe(200)
    expect(await res.text()).toContain('<tr data-instance="acme/echo">')
  })
})

describe.runIf(!hasBrowser && onCI)('status page in headless Chromium, on CI', () => {
  it('has a browser to run in', () => {
    throw new Error(`the status page cannot be tested in a browser on CI: ${NO_BROWSER}`)
  })
})

describe.skipIf(!hasBrowser)(`status page in headless Chromium${hasBrowser ? '' : ` (skipped: ${NO_BROWSER})`}`, () => {
  let browser: Browser
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
  })
  afterAll(() => browser?.close())

  async function open(t: TestGateway, path: string): Promise<Page> {
    const context = await browser.newContext()
    onTestFinished(() => context.close())
    const page = await context.newPage()
    await page.goto(`${t.url}${path}`)
    return page
  }

  const workerRow = (orgId: string, pluginId: string) => `tr[data-worker="${orgId}/${pluginId}"]`

  it('shows a live worker with its state; its Stop button stops it and the row disappears', async () => {
    const t = await startTestGateway({ env: { ADMIN_TOKEN: TOKEN } })
    await t.enable('acme', 'echo')
    expect((await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).status).toBe(200)

    const page = await open(t, `/admin/ui?token=${TOKEN}`)
    await page.waitForURL((u) => u.pathname === '/admin/ui' && u.search === '') // the token left the address bar
    expect(await page.textContent('tr[data-plugin="echo"] .badge')).toBe('fresh')
    expect(await page.textContent('tr[data-instance="acme/echo"] .badge')).toBe('ready')
    const row = page.locator(workerRow('acme', 'echo'))
    expect(await row.getAttribute('data-state')).toBe('ready')
    expect(await row.locator('td').nth(4).textContent()).toBe(String(t.spawned[0]?.pid))

    const exited = exitOf(t.spawned[0]!)
    const gone = page.waitForSelector(workerRow('acme', 'echo'), { state: 'detached' })
    await row.locator('button[data-action="stop"]').click()
    await gone
    expect(await exited).toEqual({ code: 0, signal: null }) // stopped through /disable, not killed
    expect(t.gw.pool.list()).toEqual([])
    expect(await page.textContent('#status')).toBe('')
    expect(await page.isVisible('tr[data-instance="acme/echo"] button[data-action="start"]')).toBe(true)
  })

  it('rescans the plugin directories from its Rescan button, and rolls a plugin’s workers from its Restart button', async () => {
    const plugins = join(await tempDir(), 'plugins')
    await copyPlugin(join(EXAMPLES_DIR, 'echo'), plugins, 'echo')
    const t = await startTestGateway({ pluginDirs: [plugins], env: { ADMIN_TOKEN: TOKEN } })
    await t.enable('acme', 'echo')
    expect((await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).status).toBe(200)
    const page = await open(t, `/admin/ui?token=${TOKEN}`)
    await page.waitForSelector(workerRow('acme', 'echo'))

    await copyPlugin(join(EXAMPLES_DIR, 'echo'), plugins, 'echo-two')
    await page.click('button[data-action="rescan"]')
    await page.waitForSelector('tr[data-plugin="echo-two"]')
    await page.waitForFunction("document.querySelector('#status').textContent.startsWith('rescan:')")
    expect(await page.textContent('#status')).toBe('rescan: added echo-two; changed -; removed -; invalid -')

    const exited = exitOf(t.spawned[0]!)
    await page.click('tr[data-plugin="echo"] button[data-action="restart"]')
    expect(await exited).toEqual({ code: 0, signal: null }) // drained and stopped through /disable
    expect((await fetch(`${t.url}/orgs/acme/plugins/echo/items/2`)).status).toBe(200) // served by a new worker
    expect(t.spawned).toHaveLength(2)
  })

  it('starts a worker from its instance row, picks up workers started elsewhere, and survives a reload', async () => {
    const t = await startTestGateway({ env: { ADMIN_TOKEN: TOKEN } })
    await t.enable('acme', 'echo')
    await t.enable('globex', 'echo')
    const page = await open(t, `/admin/ui?refresh=250&token=${TOKEN}`)

    await page.click('tr[data-instance="acme/echo"] button[data-action="start"]')
    await page.waitForSelector(`${workerRow('acme', 'echo')}[data-state="ready"]`)
    expect(t.spawned).toHaveLength(1)

    // Started by traffic, not by the page: the periodic refresh brings it in.
    const refreshed = page.waitForSelector(workerRow('globex', 'echo'))
    expect((await fetch(`${t.url}/orgs/globex/plugins/echo/items/1`)).status).toBe(200)
    await refreshed

    // A reload arrives without the token; the tab's sessionStorage reopens the page.
    await page.reload()
    await page.waitForSelector(workerRow('globex', 'echo'))
    expect(new URL(page.url()).search).toBe('')
    expect(await page.locator('tr[data-worker]').count()).toBe(2)
  })

  it('shows plugin-controlled text (lastError from stderr, metadata errors, versions, entry paths) as text: nothing of it runs', async () => {
    const t = await startTestGateway({ env: { ADMIN_TOKEN: TOKEN }, pluginDirs: [await hostilePlugins()] })
    for (const id of ['xss-start', 'xss-metadata']) {
      await t.enable('acme', id)
      const res = await fetch(`${t.url}/orgs/acme/plugins/${id}/ping`)
      expect([id, res.status]).toEqual([id, 503]) // the start failed / the metadata is invalid
      await res.body?.cancel()
    }
    expect((await t.instanceRow('acme', 'xss-start'))?.lastError).toContain(XSS)
    expect((await t.pluginRow('xss-metadata'))?.metadataError).toContain(XSS)

    const context = await browser.newContext()
    onTestFinished(() => context.close())
    const page = await context.newPage()
    const complaints: string[] = []
    page.on('console', (m) => void (m.type() === 'error' && complaints.push(m.text())))
    page.on('pageerror', (err) => void complaints.push(err.message))
    await page.goto(`${t.url}/admin/ui?refresh=100&token=${TOKEN}`)
    const shown = async () => ({
      start: await page.textContent('tr[data-instance="acme/xss-start"] td.error'),
      metadata: await page.textContent('tr[data-plugin="xss-metadata"] td.error'),
      version: await page.textContent('tr[data-plugin="xss-version"] td:nth-child(2)'),
      entry: await page.textContent('tr[data-plugin="xss-entry"] td.error'),
      images: await page.locator('img').count(),
      ran: await page.evaluate('window.xssRan ?? 0'),
    })
    const expected = {
      start: expect.stringContaining(XSS),
      metadata: expect.stringContaining(XSS),
      version: `1.0.0${XSS}`,
      entry: expect.stringContaining(XSS),
      images: 0,
      ran: 0,
    }
    expect(await shown()).toEqual(expected)
    // The same after the page's own refresh, which replaces the panel's HTML from the server.
    const painted = await page.getAttribute('[data-updated]', 'data-updated')
    await page.waitForSelector(`[data-updated]:not([data-updated="${painted}"])`)
    expect(await shown()).toEqual(expected)
    expect(complaints).toEqual([]) // not even a handler the CSP had to refuse
  })

  it('says a wrong token was rejected, and opens the page once the right one is entered', async () => {
    const t = await startTestGateway({ env: { ADMIN_TOKEN: TOKEN } })
    const page = await open(t, '/admin/ui?token=wrong-token-0123456789')
    expect(await page.textContent('#unlock p')).toContain('rejected')
    await page.fill('#unlock input[name="token"]', TOKEN)
    await page.click('#unlock button[type="submit"]')
    await page.waitForSelector('table#workers')
    expect(new URL(page.url()).search).toBe('')
  })
})
