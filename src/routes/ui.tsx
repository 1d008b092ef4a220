import { Hono, type Context, type MiddlewareHandler } from 'hono'
import { html } from 'hono/html'
import type { Child } from 'hono/jsx'
import { formatDuration as duration, isGatewayError } from '../core/index.js'
import type { PluginInstanceRow } from '../db/index.js'
import type { InvalidPlugin, PluginView, Registry } from '../registry/index.js'
import type { WorkerInfo, WorkerPool } from '../workers/index.js'
import type { AppEnv } from './env.js'
import { UI_SCRIPT, UI_STYLE } from './ui-assets.js'

export interface UiRouteDeps {
  registry: Registry
  pool: WorkerPool
  /** The admin guard for the page; it may accept `?token=` (a browser cannot send a bearer header when navigating). */
  auth: MiddlewareHandler
  /** Where the admin API is mounted; the page's buttons call it. */
  adminBase?: string
  /** Wall clock for uptimes; the pool's timestamps come from the same clock. */
  now?: () => number
  refreshMs?: number
}

/**
 * The status page at `/admin/ui`: server-rendered plugins, instances per org and live workers. A small
 * inline script re-fetches the panel (`/admin/ui/panel`) and calls the admin API for stop/start.
 */
export function uiRoutes(deps: UiRouteDeps) {
  const base = deps.adminBase ?? '/admin'
  const now = deps.now ?? (() => Date.now())
  const refreshMs = deps.refreshMs ?? 2_000
  const app = new Hono<AppEnv>()

  app.use(unlockOnUnauthorized(deps.auth, base))

  const snapshot = async (): Promise<PanelData> => ({
    plugins: deps.registry.plugins(),
    invalid: deps.registry.invalidPlugins(),
    instances: await deps.registry.listInstances(),
    workers: deps.pool.list(),
    now: now(),
  })

  app.get('/', async (c) => {
    const nonce = newNonce()
    secure(c, nonce)
    const page = (
      <Layout nonce={nonce} base={base} page="status" refreshMs={refreshOf(c.req.query('refresh'), refreshMs)}>
        <Panel {...(await snapshot())} />
      </Layout>
    )
    return c.html(html`<!doctype html>${page}`)
  })

  app.get('/panel', async (c) => {
    c.header('cache-control', 'no-store')
    return c.html(<Panel {...(await snapshot())} />)
  })

  return app
}

/**
 * A browser that navigates to the page without a token (a reload: the token lives in sessionStorage)
 * gets a small unlock page instead of a JSON 401; its script reopens the page with the kept token.
 */
function unlockOnUnauthorized(auth: MiddlewareHandler, base: string): MiddlewareHandler {
  return async function requireAdminPage(c, next) {
    let isAuthorized = false
    try {
      return await auth(c, async () => {
        isAuthorized = true
        await next()
      })
    } catch (err) {
      const wantsPage =
        c.req.method === 'GET' && c.req.path.replace(/\/$/, '').endsWith('/ui') && (c.req.header('accept') ?? '').includes('text/html')
      if (isAuthorized || !wantsPage || !isGatewayError(err) || err.code !== 'UNAUTHORIZED') throw err
      const isRejected = c.req.query('token') !== undefined || c.req.header('authorization') !== undefined
      const nonce = newNonce()
      secure(c, nonce)
      const page = (
        <Layout nonce={nonce} base={base} page="unlock" rejected={isRejected}>
          <form id="unlock">
            <p>{isRejected ? 'That admin token was rejected.' : 'This gateway needs its admin token (ADMIN_TOKEN).'}</p>
            <input name="token" type="password" autocomplete="off" placeholder="admin token" aria-label="admin token" />{' '}
            <button type="submit">Open</button>
          </form>
        </Layout>
      )
      return c.html(html`<!doctype html>${page}`, 401)
    }
  }
}

/** `?refresh=<ms>` picks the page's refresh period, within 250 ms … 60 s. */
function refreshOf(query: string | undefined, fallbackMs: number): number {
  const ms = Number(query)
  return query !== undefined && Number.isFinite(ms) ? Math.min(60_000, Math.max(250, Math.round(ms))) : fallbackMs
}

function newNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  return btoa(String.fromCharCode(...bytes))
}

// Only our nonce'd script and style run; fetches stay on this origin; no framing (the buttons stop workers).
function secure(c: Context, nonce: string): void {
  const header = (name: string, value: string) => c.header(name, value)
  header(
    'content-security-policy',
    `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; ` +
      `base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  )
  header('referrer-policy', 'no-referrer')
  header('cache-control', 'no-store')
  header('x-content-type-options', 'nosniff')
}

function Layout(props: {
  nonce: string
  base: string
  page: 'status' | 'unlock'
  refreshMs?: number
  rejected?: boolean
  children?: Child
}) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>plugin-gateway status</title>
        <style nonce={props.nonce} dangerouslySetInnerHTML={{ __html: UI_STYLE }} />
      </head>
      <body data-page={props.page} data-base={props.base} data-refresh-ms={props.refreshMs} data-rejected={props.rejected ? '1' : '0'}>
        <header>
          <h1>plugin-gateway</h1>
          <span id="status" role="status" />
        </header>
        <main id="panel">{props.children}</main>
        <script nonce={props.nonce} dangerouslySetInnerHTML={{ __html: UI_SCRIPT }} />
      </body>
    </html>
  )
}

interface PanelData {
  plugins: PluginView[]
  invalid: InvalidPlugin[]
  instances: PluginInstanceRow[]
  workers: WorkerInfo[]
  now: number
}

function Panel(d: PanelData) {
  // The first listed per key is its current generation (a roll lists the one it replaces after it).
  const live = new Map(d.workers.toReversed().map((w) => [`${w.orgId}/${w.pluginId}`, w]))
  const orgs = [...new Set(d.instances.map((i) => i.orgId))].sort()
  return (
    <>
      <p class="muted" data-updated={d.now}>
        {d.plugins.length} plugins · {d.instances.length} instances · {d.workers.length} live workers · updated{' '}
        {new Date(d.now).toISOString().slice(11, 19)} UTC
      </p>

      <h2>
        Plugins <ActionButton action="rescan" path="/plugins/rescan" label="rescan" text="Rescan" />
      </h2>
      <table id="plugins">
        <thead>
          <tr>
            <th>plugin</th>
            <th>version</th>
            <th>sdk</th>
            <th>metadata</th>
            <th>fetched</th>
            <th>error</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {d.plugins.map((p) => (
            <tr data-plugin={p.id}>
              <td>{p.id}</td>
              <td>{p.row.version}</td>
              <td>{p.sdkVersion}</td>
              <td>
                <Badge state={p.row.metadataState} />
              </td>
              <td>{ago(d.now, p.row.metadataFetchedAt)}</td>
              <td class="error">
                {p.scanError ? `directory invalid, serving the version listed: ${p.scanError}` : (p.row.metadataError ?? '')}
              </td>
              <td>
                <ActionButton action="restart" path={`/plugins/${p.id}/restart`} label={`restart ${p.id}`} text="Restart" />
              </td>
            </tr>
          ))}
          {d.invalid.map((p) => (
            <tr data-plugin={p.id}>
              <td>{p.id}</td>
              <td />
              <td />
              <td>
                <Badge state="invalid" />
              </td>
              <td />
              <td class="error">{p.error}</td>
              <td />
            </tr>
          ))}
        </tbody>
      </table>

      <h2>Instances</h2>
      {orgs.length === 0 && <p class="muted">No plugin is installed for any organization yet.</p>}
      {orgs.map((orgId) => (
        <>
          <h3>org {orgId}</h3>
          <table class="instances">
            <thead>
              <tr>
                <th>plugin</th>
                <th>enabled</th>
                <th>state</th>
                <th>restarts</th>
                <th>last activity</th>
                <th>last error</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {d.instances
                .filter((i) => i.orgId === orgId)
                .map((i) => {
                  const w = live.get(`${i.orgId}/${i.pluginId}`)
                  return (
                    <tr data-instance={`${i.orgId}/${i.pluginId}`}>
                      <td>{i.pluginId}</td>
                      <td>{i.enabled ? 'yes' : 'no'}</td>
                      <td>
                        <Badge state={w?.state ?? i.runtimeState} />
                      </td>
                      <td>{i.restarts}</td>
                      <td>{ago(d.now, w?.lastActivityAt ?? i.lastActivityAt)}</td>
                      <td class="error">{w?.lastError ?? i.lastError ?? ''}</td>
                      <td>{i.enabled && !w && <InstanceButton action="start" orgId={i.orgId} pluginId={i.pluginId} />}</td>
                    </tr>
                  )
                })}
            </tbody>
          </table>
        </>
      ))}

      <h2>Workers</h2>
      {d.workers.length === 0 && (
        <p class="muted" id="no-workers">
          No live workers.
        </p>
      )}
      <table id="workers">
        <thead>
          <tr>
            <th>org</th>
            <th>plugin</th>
            <th>gen</th>
            <th>state</th>
            <th>pid</th>
            <th>uptime</th>
            <th>in flight</th>
            <th>last activity</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {d.workers.map((w) => (
            <tr data-worker={`${w.orgId}/${w.pluginId}`} data-state={w.state}>
              <td>{w.orgId}</td>
              <td>{w.pluginId}</td>
              <td>{w.gen}</td>
              <td>
                <Badge state={w.state} />
              </td>
              <td>{w.pid ?? ''}</td>
              <td>{w.startedAt === null ? '' : duration(d.now - w.startedAt)}</td>
              <td>{w.inFlight}</td>
              <td>{ago(d.now, w.lastActivityAt)}</td>
              <td>{w.state !== 'stopping' && <InstanceButton action="stop" orgId={w.orgId} pluginId={w.pluginId} />}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  )
}

function Badge(props: { state: string }) {
  return <span class={`badge s-${props.state}`}>{props.state}</span>
}

/** A button the page's script turns into `POST <admin>/<path>`; `label` names it in the status line. */
function ActionButton(props: { action: string; path: string; label: string; text: string }) {
  return (
    <button type="button" data-action={props.action} data-path={props.path} data-label={props.label}>
      {props.text}
    </button>
  )
}

function InstanceButton(props: { action: 'start' | 'stop'; orgId: string; pluginId: string }) {
  const key = `${props.orgId}/${props.pluginId}`
  return (
    <ActionButton
      action={props.action}
      path={`/orgs/${props.orgId}/plugins/${props.pluginId}/${props.action}`}
      label={`${props.action} ${key}`}
      text={props.action === 'stop' ? 'Stop' : 'Start'}
    />
  )
}

function ago(now: number, at: Date | number | null | undefined): string {
  if (at === null || at === undefined) return '—'
  return `${duration(now - (typeof at === 'number' ? at : at.getTime()))} ago`
}
