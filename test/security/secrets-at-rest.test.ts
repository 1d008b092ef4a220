import { createHmac, randomBytes } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createClient } from '@libsql/client'
import { describe, expect, it, onTestFinished } from 'vitest'
import { isGatewayError } from '../../src/core/index.js'
import { MASK } from '../../src/secrets/index.js'
import { ROOT, startTestGateway, TEST_SECRET_KEY, type TestGateway } from '../helpers/gateway.js'
import { spawnNode, workerEnv } from '../helpers/process.js'

const OTHER_KEY = 'ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100'

const sign = (body: string, secret: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`

/** A signed webhook delivery's answer as `<status>` or `<status> <code>`, so a failure names its cause. */
async function postWebhook(t: TestGateway, orgId: string, secret: string): Promise<string> {
  const body = '{"type":"invoice.paid"}'
  const res = await fetch(`${t.url}/orgs/${orgId}/plugins/webhook/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-signature': sign(body, secret) },
    body,
  })
  const reply = (await res.json()) as { error?: { code?: string } }
  return res.status === 200 ? '200' : `${res.status} ${reply.error?.code ?? ''}`
}

/** Every byte of the database files (main file, WAL, shared memory), after pending writes land. */
async function databaseBytes(t: TestGateway): Promise<Buffer> {
  await t.gw.flush()
  const files = (await readdir(t.dir)).filter((f) => f.startsWith('gateway.db'))
  expect(files).toContain('gateway.db')
  return Buffer.concat(await Promise.all(files.map((f) => readFile(join(t.dir, f)))))
}

/** The raw stored columns, read with a separate libSQL client (not the gateway's repositories). */
async function rawRow(t: TestGateway, orgId: string, pluginId: string): Promise<{ config: string; auth_state: string | null }> {
  const client = createClient({ url: `file:${join(t.dir, 'gateway.db')}` })
  onTestFinished(() => client.close())
  await t.gw.flush()
  const rs = await client.execute({
    sql: 'select config, auth_state from plugin_instances where org_id = ? and plugin_id = ?',
    args: [orgId, pluginId],
  })
  const row = rs.rows[0]
  if (!row) throw new Error(`no row for ${orgId}/${pluginId}`)
  return { config: String(row.config), auth_state: row.auth_state === null ? null : String(row.auth_state) }
}

async function startError(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  )
  if (!isGatewayError(err)) throw new Error(`expected a coded start-up refusal, got ${String(err)}`)
  return { code: err.code, message: err.message }
}

describe('secrets at rest', () => {
  it('stores an encrypted config field and credentials sealed: the libSQL file never holds them, the worker gets the plaintext', async () => {
    const t = await startTestGateway()
    const secret = `whsec-${randomBytes(12).toString('hex')}`
    const apiKey = `whk_${randomBytes(12).toString('hex')}`
    await t.enable('acme', 'webhook', { webhookSecret: secret })
    expect(await postWebhook(t, 'acme', secret)).toBe('200') // the worker verified the HMAC with the plaintext
    expect(await postWebhook(t, 'acme', 'not-the-secret')).toBe('401 BAD_SIGNATURE')

    const auth = await t.admin('PUT', '/orgs/acme/plugins/webhook/auth', { methodId: 'apiKey', credentials: { apiKey } })
    expect(auth.status).toBe(200)

    const bytes = await databaseBytes(t)
    expect(bytes.includes(secret)).toBe(false)
    expect(bytes.includes(apiKey)).toBe(false)
    const raw = await rawRow(t, 'acme', 'webhook')
    expect(JSON.parse(raw.config)).toEqual({ webhookSecret: { $sealed: expect.stringMatching(/^v1:[0-9a-f]{8}:[\w-]+$/) } })
    expect(JSON.parse(raw.auth_state ?? 'null')).toEqual({ methodId: 'apiKey', credentials: { $sealed: expect.stringMatching(/^v1:/) } })

    // The restarted worker (new credentials) still gets the secret, and its HAY_ORG_AUTH.
    expect(await postWebhook(t, 'acme', secret)).toBe('200')
  })

  it('masks secrets in every admin response: PUT and GET of the instance, auth, plugins, workers', async () => {
    const t = await startTestGateway()
    const secret = `whsec-${randomBytes(12).toString('hex')}`
    const token = `tok-${randomBytes(12).toString('hex')}`
    const put = await t.admin('PUT', '/orgs/acme/plugins/webhook', { enabled: true, config: { webhookSecret: secret } })
    expect(put).toMatchObject({ status: 200, body: { config: { webhookSecret: MASK } } })
    expect(await postWebhook(t, 'acme', secret)).toBe('200') // metadata (configSchema) is known from here on

    const again = await t.admin('PUT', '/orgs/acme/plugins/webhook', { config: { webhookSecret: secret } })
    expect(again).toMatchObject({ status: 200, body: { config: { webhookSecret: MASK } } })
    await t.enable('acme', 'env-probe', { token, label: 'visible' })
    const auth = await t.admin('PUT', '/orgs/acme/plugins/env-probe/auth', { methodId: 'apiKey', credentials: { apiKey: `good-${token}` } })
    expect(auth).toMatchObject({ status: 200, body: { auth: { methodId: 'apiKey', configured: true } } })

    const responses = [
      put,
      again,
      auth,
      await t.admin('GET', '/orgs/acme/plugins/webhook'),
      await t.admin('GET', '/orgs/acme/plugins/env-probe'),
      await t.admin('GET', '/plugins'),
      await t.admin('GET', '/workers'),
    ]
    expect(responses[3]).toMatchObject({ status: 200, body: { config: { webhookSecret: MASK } } })
    // label was sealed too (env-probe's configSchema was unknown when it was stored); the auth check
    // started the worker, whose metadata says label is not secret: it is shown as it is from then on.
    expect(responses[4]).toMatchObject({
      status: 200,
      body: { config: { token: MASK, label: 'visible' }, auth: { methodId: 'apiKey', configured: true } },
    })
    for (const r of responses) {
      const text = JSON.stringify(r.body)
      expect(text).not.toContain(secret)
      expect(text).not.toContain(token)
      expect(text).not.toContain('$sealed')
    }
    // The worker itself sees both the secret and the non-secret field.
    const probe = await (await fetch(`${t.url}/orgs/acme/plugins/env-probe/whoami`)).json()
    expect(probe).toMatchObject({
      config: { token, label: 'visible' },
      auth: { methodId: 'apiKey', credentials: { apiKey: `good-${token}` } },
    })
  })

  it('keeps the stored secret when a masked value is sent back, and pushes a new one to the running worker', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'webhook', { webhookSecret: 'first-secret' })
    expect(await postWebhook(t, 'acme', 'first-secret')).toBe('200')

    const shown = await t.admin('GET', '/orgs/acme/plugins/webhook')
    expect(shown.body.config).toEqual({ webhookSecret: MASK })
    expect(await t.admin('PUT', '/orgs/acme/plugins/webhook', { config: shown.body.config })).toMatchObject({ status: 200 })
    expect(await postWebhook(t, 'acme', 'first-secret')).toBe('200')
    await t.admin('POST', '/orgs/acme/plugins/webhook/stop')
    expect(await postWebhook(t, 'acme', 'first-secret')).toBe('200') // a fresh worker opened the kept value

    expect(await t.admin('PUT', '/orgs/acme/plugins/webhook', { config: { webhookSecret: 'second-secret' } })).toMatchObject({
      status: 200,
    })
    expect(await postWebhook(t, 'acme', 'second-secret')).toBe('200')
    expect(await postWebhook(t, 'acme', 'first-secret')).toBe('401 BAD_SIGNATURE')
    expect(t.spawned).toHaveLength(2) // the new secret reached the live worker through /config-update

    const forged = await t.admin('PUT', '/orgs/acme/plugins/webhook', { config: { webhookSecret: { $sealed: 'v1:00000000:AAAA' } } })
    expect(forged).toMatchObject({ status: 400, body: { error: { code: 'CONFIG_INVALID' } } })
  })

  it('without SECRET_KEY in a cluster (no generated key), refuses (503 SECRETS_UNAVAILABLE) every write that would store a secret, and accepts the rest', async () => {
    const t = await startTestGateway({ secretKey: null, env: { CLUSTER_SECRET: 'cluster-secret-0123456789' } })
    const refused = await t.admin('PUT', '/orgs/acme/plugins/webhook', { enabled: true, config: { webhookSecret: 'shh' } })
    expect(refused).toMatchObject({ status: 503, body: { error: { code: 'SECRETS_UNAVAILABLE' } } })
    expect(refused.body.error.message).toContain('SECRET_KEY')

    await t.enable('acme', 'webhook')
    await t.enable('acme', 'echo')
    await (await fetch(`${t.url}/orgs/acme/plugins/webhook/webhook`, { method: 'POST', body: '{}' })).body?.cancel()
    await (await fetch(`${t.url}/orgs/acme/plugins/echo/items/1`)).body?.cancel()

    // Schema known: only the encrypted field is refused; plain config is fine.
    const stillRefused = await t.admin('PUT', '/orgs/acme/plugins/webhook', { config: { webhookSecret: 'shh' } })
    expect(stillRefused).toMatchObject({ status: 503, body: { error: { code: 'SECRETS_UNAVAILABLE' } } })
    expect(await t.admin('PUT', '/orgs/acme/plugins/echo', { config: { prefix: 'plain' } })).toMatchObject({
      status: 200,
      body: { config: { prefix: 'plain' } },
    })
    const auth = await t.admin('PUT', '/orgs/acme/plugins/webhook/auth', { methodId: 'apiKey', credentials: { apiKey: 'whk_0123456789' } })
    expect(auth).toMatchObject({ status: 503, body: { error: { code: 'SECRETS_UNAVAILABLE' } } })
    expect((await t.instanceRow('acme', 'webhook'))?.config).toEqual({})
    expect((await databaseBytes(t)).includes('whk_0123456789')).toBe(false)
  })

  it('refuses to start without SECRET_KEY, or with another key, once sealed secrets are stored', async () => {
    const first = await startTestGateway()
    await first.enable('acme', 'webhook', { webhookSecret: 'shh' })
    await first.gw.close()

    const missing = await startError(startTestGateway({ dir: first.dir, secretKey: null }))
    expect(missing.code).toBe('SECRETS_UNAVAILABLE')
    expect(missing.message).toContain('SECRET_KEY')
    const wrong = await startError(startTestGateway({ dir: first.dir, secretKey: OTHER_KEY }))
    expect(wrong.code).toBe('SECRETS_UNREADABLE')
    expect(wrong.message).toContain('SECRET_KEY')

    // The real entry point: a clear message on stderr and exit code 1, not a stack trace.
    const env = {
      PORT: '0',
      DATABASE_URL: `file:${join(first.dir, 'gateway.db')}`,
      PLUGINS_DIR: join(ROOT, 'examples', 'plugins'),
      LOG_LEVEL: 'silent',
    }
    const noKey = spawnNode([join(ROOT, 'dist', 'node', 'main.js')], { env: workerEnv(env) })
    expect(await noKey.exited).toEqual({ code: 1, signal: null })
    expect(noKey.stderr()).toMatch(/^plugin-gateway: cannot start \(SECRETS_UNAVAILABLE\): .*SECRET_KEY/)
    const badKey = spawnNode([join(ROOT, 'dist', 'node', 'main.js')], { env: workerEnv({ ...env, SECRET_KEY: 'too-short' }) })
    expect(await badKey.exited).toEqual({ code: 1, signal: null })
    expect(badKey.stderr()).toContain('SECRET_KEY')

    const ok = await startTestGateway({ dir: first.dir, secretKey: TEST_SECRET_KEY })
    expect(await postWebhook(ok, 'acme', 'shh')).toBe('200')
  })

  it('rotates SECRET_KEY: with the old key in SECRET_KEY_PREVIOUS, start-up seals every secret again under the new key', async () => {
    const first = await startTestGateway({ secretKey: OTHER_KEY })
    await first.enable('acme', 'webhook', { webhookSecret: 'rotate-me' })
    expect(await postWebhook(first, 'acme', 'rotate-me')).toBe('200') // started: its auth methods are known
    expect(
      (await first.admin('PUT', '/orgs/acme/plugins/webhook/auth', { methodId: 'apiKey', credentials: { apiKey: 'whk_rotate0123456789' } }))
        .status,
    ).toBe(200)
    await first.enable('beta', 'echo')
    expect((await fetch(`${first.url}/orgs/beta/plugins/echo/items/1`)).status).toBe(200) // its schema is known now
    await first.enable('beta', 'echo', { prefix: 'public' })
    const before = await rawRow(first, 'acme', 'webhook')
    await first.gw.close()
    const keyIdOf = (text: string) => [...text.matchAll(/"v1:([0-9a-f]{8}):/g)].map((m) => m[1])
    const [oldId] = keyIdOf(before.config)

    const rotating = await startTestGateway({ dir: first.dir, secretKey: TEST_SECRET_KEY, env: { SECRET_KEY_PREVIOUS: OTHER_KEY } })
    const after = await rawRow(rotating, 'acme', 'webhook')
    const ids = [...keyIdOf(after.config), ...keyIdOf(after.auth_state ?? '')]
    expect(ids).toHaveLength(2)
    expect(ids.every((id) => id !== oldId)).toBe(true)
    expect((await rawRow(rotating, 'beta', 'echo')).config).toBe('{"prefix":"public"}') // nothing secret: untouched
    expect(await postWebhook(rotating, 'acme', 'rotate-me')).toBe('200')
    await rotating.gw.close()

    // The old key can go now; and a gateway left on the old key alone is refused, naming SECRET_KEY.
    const rotated = await startTestGateway({ dir: first.dir, secretKey: TEST_SECRET_KEY })
    expect(await postWebhook(rotated, 'acme', 'rotate-me')).toBe('200')
    const auth = await rotated.instanceRow('acme', 'webhook')
    expect(auth?.authState).toMatchObject({ methodId: 'apiKey' })
    await rotated.gw.close()
    const stale = await startError(startTestGateway({ dir: first.dir, secretKey: OTHER_KEY }))
    expect(stale.code).toBe('SECRETS_UNREADABLE')
    expect(stale.message).toContain('SECRET_KEY_PREVIOUS')
  })

  it('rotating past a secret that no longer opens (moved between rows) leaves it, and seals the rest again', async () => {
    const first = await startTestGateway({ secretKey: OTHER_KEY })
    await first.enable('acme', 'webhook', { webhookSecret: 'acme-secret' })
    await first.enable('beta', 'webhook', { webhookSecret: 'beta-secret' })
    const acme = await rawRow(first, 'acme', 'webhook')
    await first.gw.close()
    const client = createClient({ url: `file:${join(first.dir, 'gateway.db')}` })
    onTestFinished(() => client.close())
    await client.execute({ sql: `update plugin_instances set config = ? where org_id = 'beta'`, args: [acme.config] })

    const t = await startTestGateway({ dir: first.dir, secretKey: TEST_SECRET_KEY, env: { SECRET_KEY_PREVIOUS: OTHER_KEY } })
    expect(await postWebhook(t, 'acme', 'acme-secret')).toBe('200') // started, and acme's secret is under the new key
    expect((await rawRow(t, 'acme', 'webhook')).config).not.toBe(acme.config)
    expect((await rawRow(t, 'beta', 'webhook')).config).toBe(acme.config) // left as it was
    const res = await fetch(`${t.url}/orgs/beta/plugins/webhook/webhook`, { method: 'POST', body: '{}' })
    expect(res.status).toBe(500)
    expect(await res.json()).toMatchObject({ error: { code: 'SECRETS_UNREADABLE' } })
  })

  it('never hands a worker a secret that fails authentication: tampered or moved between orgs', async () => {
    const first = await startTestGateway()
    await first.enable('acme', 'webhook', { webhookSecret: 'acme-secret' })
    await first.enable('beta', 'webhook', { webhookSecret: 'beta-secret' })
    const beta = await rawRow(first, 'beta', 'webhook')
    await first.gw.close()

    // An attacker with write access to the database copies beta's sealed secret into acme's row.
    const client = createClient({ url: `file:${join(first.dir, 'gateway.db')}` })
    await client.execute({ sql: `update plugin_instances set config = ? where org_id = 'acme'`, args: [beta.config] })
    client.close()

    const t = await startTestGateway({ dir: first.dir })
    const res = await fetch(`${t.url}/orgs/acme/plugins/webhook/webhook`, { method: 'POST', body: '{}' })
    expect(res.status).toBe(500)
    expect(await res.json()).toMatchObject({ error: { code: 'SECRETS_UNREADABLE' } })
    expect(t.spawned).toHaveLength(0)
    expect(await postWebhook(t, 'beta', 'beta-secret')).toBe('200')
  })

  it('seals plaintext credentials and encrypted fields an earlier version stored, at start-up', async () => {
    const first = await startTestGateway()
    await first.enable('acme', 'webhook')
    expect(await postWebhook(first, 'acme', 'x')).toBe('503 NOT_CONFIGURED') // metadata fetched: webhookSecret is known to be encrypted
    await first.gw.close()
    const client = createClient({ url: `file:${join(first.dir, 'gateway.db')}` })
    await client.execute({
      sql: `update plugin_instances set config = ?, auth_state = ? where org_id = 'acme'`,
      args: [
        JSON.stringify({ webhookSecret: 'legacy-secret' }),
        JSON.stringify({ methodId: 'apiKey', credentials: { apiKey: 'whk_legacy0000' } }),
      ],
    })
    client.close()

    const t = await startTestGateway({ dir: first.dir })
    const raw = await rawRow(t, 'acme', 'webhook')
    expect(raw.config).toContain('$sealed')
    expect(raw.auth_state).toContain('$sealed')
    expect(raw.config + raw.auth_state).not.toMatch(/legacy/)
    expect(await postWebhook(t, 'acme', 'legacy-secret')).toBe('200')
  })
})
