import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fetchJson, rawRequest } from '../helpers/http.js'
import { FIXTURES_DIR, type RunnerProcess, startRunner } from '../helpers/process.js'
import { useNoLeftoverProcesses } from './setup.js'

const pluginDir = join(FIXTURES_DIR, 'express-parity')
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

// What Hay's runner (Express 4) gives route handlers, checked against it with the fixture's routes.
describe("route handlers get Express's request and response helpers", () => {
  useNoLeftoverProcesses()

  const text = async (runner: RunnerProcess, path: string, headers: Record<string, string> = {}) => {
    const reply = await rawRequest({ port: runner.port, path, headers })
    return { status: reply.status, headers: reply.headers, body: reply.body.toString('utf8') }
  }

  it('parses nested query strings and urlencoded forms as Express (qs) does', async () => {
    const runner = await startRunner({ pluginDir })
    const query = await fetchJson<{ query: unknown }>(runner.url('/echo?a[b]=1&list[]=x&list[]=y&o[0]=z&%5Bbare=1&e=1&e=2&f'))
    expect(query.body.query).toEqual({ a: { b: '1' }, list: ['x', 'y'], o: ['z'], '[bare': '1', e: ['1', '2'], f: '' })
    // Express's query defaults: 5 levels deep, arrays up to index 20 (past it, an object), no prototype keys.
    const limits = await fetchJson<{ query: unknown }>(runner.url('/echo?d[a][b][c][d][e][f][g]=x&y[19]=a&z[21]=b&p[__proto__][q]=1'))
    expect(limits.body.query).toEqual({ d: { a: { b: { c: { d: { e: { '[f][g]': 'x' } } } } } }, y: ['a'], z: { 21: 'b' }, p: {} })

    const form = await fetchJson<{ body: unknown }>(runner.url('/echo'), {
      method: 'POST',
      headers: FORM,
      body: 'user[name]=Ada&user[tags][]=a&user[tags][]=b&plain=p',
    })
    expect(form.body.body).toEqual({ user: { name: 'Ada', tags: ['a', 'b'] }, plain: 'p' })
    const flat = await fetchJson<{ body: unknown }>(runner.url('/echo'), { method: 'POST', headers: FORM, body: 'a=1&a=2&b=' })
    expect(flat.body.body).toEqual({ a: ['1', '2'], b: '' })
  })

  it('answers a form nested past 32 levels with a coded 400, as express.urlencoded refuses it', async () => {
    const runner = await startRunner({ pluginDir })
    const reply = await fetchJson(runner.url('/echo'), { method: 'POST', headers: FORM, body: `a${'[x]'.repeat(33)}=1` })
    expect(reply.status).toBe(400)
    expect(reply.body).toMatchObject({ error: { code: 'INVALID_FORM' } })
  })

  it('gives the request properties Express does without trust proxy', async () => {
    const runner = await startRunner({ pluginDir })
    const reply = await text(runner, '/echo', {
      host: 'plugins.example.test:8080',
      'x-requested-with': 'XMLHttpRequest',
      'x-forwarded-proto': 'https',
    })
    expect(JSON.parse(reply.body)).toEqual({
      query: {},
      body: {},
      baseUrl: '',
      ip: 'string',
      ips: [],
      hostname: 'plugins.example.test',
      protocol: 'http',
      secure: false,
      xhr: true,
    })
  })

  it('sets headers as res.set, res.header, res.get, res.append and res.type do', async () => {
    const runner = await startRunner({ pluginDir })
    const many = await text(runner, '/set-many')
    expect([many.status, many.headers['x-a'], many.headers['x-b'], many.body]).toEqual([200, '1', '2', '{"ok":true}'])
    expect(JSON.parse((await text(runner, '/header')).body)).toEqual({ get: 'h' })
    expect((await text(runner, '/append')).headers['x-l']).toBe('a, b')
    expect((await text(runner, '/plain')).headers['content-type']).toBe('text/plain; charset=utf-8')
    const types = await Promise.all(['png', '.html', 'json', 'csv', 'unknown-ext'].map((ext) => text(runner, `/type/${ext}`)))
    expect(types.map((t) => t.headers['content-type'])).toEqual([
      'image/png',
      'text/html; charset=utf-8',
      'application/json; charset=utf-8',
      'text/csv; charset=utf-8',
      'application/octet-stream',
    ])
    expect((await text(runner, '/content-type')).headers['content-type']).toBe('application/xml; charset=utf-8')
    expect(JSON.parse((await text(runner, '/locals')).body)).toEqual({ locals: { seen: true } })
  })

  it('redirects as Express does: escaped Location, back to the Referer, a text body', async () => {
    const runner = await startRunner({ pluginDir })
    const located = await text(runner, '/location')
    expect([located.status, located.headers.location]).toEqual([301, '/elsewhere'])
    const escaped = await text(runner, `/redirect?to=${encodeURIComponent('https://example.test/a b?q=<é>&p=%41')}`)
    expect(escaped.status).toBe(302)
    expect(escaped.headers.location).toBe('https://example.test/a%20b?q=%3C%C3%A9%3E&p=%41')
    expect(escaped.body).toBe('Found. Redirecting to https://example.test/a%20b?q=%3C%C3%A9%3E&p=%41')
    expect((await text(runner, '/redirect?to=back', { referer: '/from' })).headers.location).toBe('/from')
    expect((await text(runner, '/redirect?to=back')).headers.location).toBe('/')
  })

  it('sends no body and no content-type with a 204', async () => {
    const runner = await startRunner({ pluginDir })
    const reply = await text(runner, '/no-content')
    expect([reply.status, reply.headers['content-type'], reply.body]).toEqual([204, undefined, ''])
  })
})
