import { createHmac } from 'node:crypto'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fetchJson, postJson, rawRequest } from '../helpers/http.js'
import { EXAMPLES_DIR, startRunner } from '../helpers/process.js'
import { useNoLeftoverProcesses } from './setup.js'

const pluginDir = join(EXAMPLES_DIR, 'webhook')
const SECRET = 'shh-its-a-secret'
const sign = (body: Buffer, secret = SECRET) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`

describe('runner with the webhook example', () => {
  useNoLeftoverProcesses()

  it('declares an encrypted secret, an API key and an apiKey auth method', async () => {
    const runner = await startRunner({ pluginDir })
    const { body } = await fetchJson<Record<string, unknown>>(runner.url('/metadata'))
    expect(body).toMatchObject({
      configSchema: {
        webhookSecret: { type: 'string', required: true, encrypted: true },
        apiKey: { type: 'string', encrypted: true },
      },
      authMethods: [{ type: 'apiKey', id: 'apiKey', label: 'API key', configField: 'apiKey' }],
      routes: [{ method: 'POST', path: '/webhook' }],
    })
  })

  it('accepts a webhook whose signature covers the exact raw bytes', async () => {
    const runner = await startRunner({ pluginDir, config: { webhookSecret: SECRET } })
    // Odd spacing and key order: re-serialising the parsed body would change the digest.
    const body = Buffer.from('{  "type" : "invoice.paid",\n\t"id":"evt_1" , "amount": 1.50 }\r\n')
    const reply = await rawRequest({
      port: runner.port,
      method: 'POST',
      path: '/webhook',
      headers: { 'content-type': 'application/json', 'x-signature': sign(body) },
      body,
    })
    expect(reply.status).toBe(200)
    expect(JSON.parse(reply.body.toString())).toEqual({ received: true, type: 'invoice.paid', bytes: body.length })
  })

  it('rejects a wrong, foreign-secret, malformed or missing signature with 401', async () => {
    const runner = await startRunner({ pluginDir, config: { webhookSecret: SECRET } })
    const body = Buffer.from('{"type":"invoice.paid"}')
    const tampered = Buffer.from('{"type":"invoice.paid" }')
    const cases: Record<string, string | undefined> = {
      'signature of other bytes': sign(tampered),
      'signature with another secret': sign(body, 'other'),
      'not sha256=': sign(body).replace('sha256=', 'sha1='),
      'not hex': 'sha256=zz',
      missing: undefined,
    }
    for (const [name, signature] of Object.entries(cases)) {
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (signature !== undefined) headers['x-signature'] = signature
      const reply = await rawRequest({ port: runner.port, method: 'POST', path: '/webhook', headers, body })
      expect(reply.status, name).toBe(401)
      expect(JSON.parse(reply.body.toString()).error.code, name).toBe('BAD_SIGNATURE')
    }
  })

  it('validates an API key of the right shape', async () => {
    const runner = await startRunner({ pluginDir })
    const reply = await postJson(runner.url('/validate-auth'), {
      authState: { methodId: 'apiKey', credentials: { apiKey: 'whk_0123456789' } },
    })
    expect(reply).toEqual(expect.objectContaining({ status: 200, body: { valid: true } }))
  })

  it('reports an invalid API key as valid:false with the reason', async () => {
    const runner = await startRunner({ pluginDir })
    for (const credentials of [{ apiKey: 'sk_0123456789' }, { apiKey: 'whk_short' }, { apiKey: 42 }, {}]) {
      const reply = await postJson<{ valid: boolean; error?: string }>(runner.url('/validate-auth'), {
        authState: { methodId: 'apiKey', credentials },
      })
      expect(reply.status).toBe(200)
      expect(reply.body).toEqual({ valid: false, error: expect.stringContaining('whk_') })
    }
    const other = await postJson(runner.url('/validate-auth'), { authState: { methodId: 'oauth', credentials: {} } })
    expect(other.body).toEqual({ valid: false, error: 'unsupported auth method: oauth' })
  })
})
