// The forwarder's client signal aborts the waits of a request whose client went away (a cold start,
// an owner's lease): also when it is first asked for after the client had already gone.
import { once } from 'node:events'
import { createServer, request, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createNodeProxy } from '../../src/proxy/index.js'

describe('the client signal of a Node response', () => {
  it('is aborted when asked for after the client closed the connection, as when asked for before', async () => {
    const proxy = createNodeProxy({ upstreamTimeoutMs: 1_000, streamIdleTimeoutMs: 1_000, maxBodyBytes: 1_024 })
    const responses: ServerResponse[] = []
    const arrived = new Promise<void>((resolve) => {
      const server = createServer((_req, res) => {
        responses.push(res)
        if (responses.length === 1) proxy.clientSignal(res) // asked for while the client is there
        if (responses.length === 2) resolve()
      })
      server.listen(0, '127.0.0.1')
      onTestFinished(() => new Promise<void>((done) => server.close(() => done())))
      void once(server, 'listening').then(() => {
        for (let i = 0; i < 2; i++)
          request({ port: (server.address() as AddressInfo).port, host: '127.0.0.1' })
            .on('error', () => {})
            .end()
      })
    })
    await arrived
    const closed = responses.map((res) => once(res, 'close'))
    for (const res of responses) res.socket?.destroy() // the connections end before any answer, as when clients leave
    await Promise.all(closed)
    const [before, after] = responses as [ServerResponse, ServerResponse]
    expect([proxy.clientSignal(before).aborted, proxy.clientSignal(after).aborted]).toEqual([true, true])
  })
})
