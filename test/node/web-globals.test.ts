import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../helpers/gateway.js'

const run = promisify(execFile)

// What the Node entry does first (src/node/web-globals.ts), checked in a fresh node process: the
// web globals come from the undici package, and Node's built-in copy is never loaded even once
// @hono/node-server (which reads Request and Response at import) and undici are loaded.
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

describe('the Node entry web globals', () => {
  it('are the undici package classes, and Node never loads its built-in copy', async () => {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', SCRIPT], { cwd: ROOT })
    expect(JSON.parse(stdout)).toEqual({ builtinLoaded: false, sameClasses: [true, true, true, true], answer: 'pong:/x' })
  })
})
