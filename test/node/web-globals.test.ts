import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { enable, startGatewayProcess } from '../helpers/gateway-process.js'
import { ROOT, tempDir } from '../helpers/gateway.js'

const run = promisify(execFile)

// What the Node entry does first (src/node/web-globals.ts), checked in a fresh node process: the
// web globals come from the undici package, and Node's built-in copy is never loaded even once
// @hono/node-server (which reads Request and Response at import), undici and node:http (whose ES
// module facade reads its WebSocket, CloseEvent and MessageEvent on Node 22+) are imported.
const SCRIPT = `
await import(${JSON.stringify(join(ROOT, 'dist', 'node', 'web-globals.js'))})
await import('@hono/node-server')
const undici = await import('undici')
const server = (await import('node:http')).createServer((req, res) => res.end('pong:' + req.url)).listen(0, '127.0.0.1')
await new Promise((r) => server.once('listening', r))
const answer = await (await fetch('http://127.0.0.1:' + server.address().port + '/x')).text()
server.close()
console.log(JSON.stringify({
  builtinLoaded: process.moduleLoadList.some((m) => m.includes('internal/deps/undici/undici')),
  sameClasses: [Request === undici.Request, Response === undici.Response, Headers === undici.Headers, fetch === undici.fetch],
  answer,
}))
`

const REPORTER = join(ROOT, 'test', 'fixtures', 'preload', 'report-web-globals.cjs')

describe('the Node entry web globals', () => {
  it('are the undici package classes, and Node never loads its built-in copy', async () => {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', SCRIPT], { cwd: ROOT })
    expect(JSON.parse(stdout)).toEqual({ builtinLoaded: false, sameClasses: [true, true, true, true], answer: 'pong:/x' })
  })

  it('are in place before the entry loads the gateway: the real gateway never loads the built-in copy', async () => {
    const gw = await startGatewayProcess(await tempDir(), {}, ['--require', REPORTER])
    await enable(gw.url, 'acme', 'echo')
    const res = await fetch(`${gw.url}/orgs/acme/plugins/echo/items/1`)
    expect(res.status).toBe(200)
    await res.body?.cancel()

    gw.proc.child.kill('SIGTERM')
    expect(await gw.proc.exited).toEqual({ code: 0, signal: null })
    const report = /^web-globals (.*)$/m.exec(gw.proc.stderr())?.[1]
    expect(JSON.parse(report ?? 'null')).toEqual({ builtinLoaded: false, sameClasses: [true, true, true] })
  })
})
