import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/gateway.js'

type ErrorBody = { error: { code: string; message: string } }

describe('what the workers’ user can reach', () => {
  it('names the error a worker died of during start, not the last lines of Node’s dump (its version)', async () => {
    const t = await startTestGateway()
    await t.enable('acme', 'denied-on-start')
    const res = await fetch(`${t.url}/orgs/acme/plugins/denied-on-start/ping`)
    const body = (await res.json()) as ErrorBody
    expect([res.status, body.error.code]).toEqual([503, 'WORKER_START_FAILED'])
    const named =
      /exited during start \(code 1\): Error: Access to this API has been restricted \| code: 'ERR_ACCESS_DENIED' \| .*'\/etc\/hostname'/
    expect(body.error.message).toMatch(named)
    expect(body.error.message).not.toContain('Node.js v')
    expect((await t.instanceRow('acme', 'denied-on-start'))?.lastError).toMatch(named)
  })
})
