import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fetchJson, postJson } from '../helpers/http.js'
import { EXAMPLES_DIR, startRunner } from '../helpers/process.js'
import { useNoLeftoverProcesses } from './setup.js'

const pluginDir = join(EXAMPLES_DIR, 'tools')

const ADD = {
  name: 'add',
  description: 'Adds two numbers.',
  input_schema: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'] },
}
const UPPERCASE = {
  name: 'uppercase',
  description: 'Upper-cases a string.',
  input_schema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
}

describe('runner with the tools example', () => {
  useNoLeftoverProcesses()

  it('lists its tools with their input schemas', async () => {
    const runner = await startRunner({ pluginDir })
    expect((await fetchJson(runner.url('/mcp/list-tools'))).body).toEqual({ tools: [ADD, UPPERCASE] })
  })

  it('declares the same tools under mcp.local in /metadata', async () => {
    const runner = await startRunner({ pluginDir })
    expect((await fetchJson<{ mcp: unknown }>(runner.url('/metadata'))).body.mcp).toEqual({ local: [ADD, UPPERCASE], external: [] })
  })

  it('calls a tool and returns its result as is', async () => {
    const runner = await startRunner({ pluginDir })
    expect(await postJson(runner.url('/mcp/call-tool'), { toolName: 'add', arguments: { a: 2, b: 40 } })).toMatchObject({
      status: 200,
      body: { content: [{ type: 'text', text: '42' }], structuredContent: { sum: 42 } },
    })
    expect((await postJson(runner.url('/mcp/call-tool'), { toolName: 'uppercase', arguments: { text: 'hay!' } })).body).toEqual({
      content: [{ type: 'text', text: 'HAY!' }],
    })
  })

  it('passes a tool-level failure through as an MCP isError result', async () => {
    const runner = await startRunner({ pluginDir })
    const reply = await postJson(runner.url('/mcp/call-tool'), { toolName: 'add', arguments: { a: 'two' } })
    expect(reply).toMatchObject({ status: 200, body: { isError: true } })
  })

  it('answers an unknown tool with a 404 JSON error', async () => {
    const runner = await startRunner({ pluginDir })
    const reply = await postJson<{ error: { code: string } }>(runner.url('/mcp/call-tool'), { toolName: 'divide', arguments: {} })
    expect(reply.status).toBe(404)
    expect(reply.body.error.code).toBe('TOOL_NOT_FOUND')
  })

  it('answers a call without a tool name with 400', async () => {
    const runner = await startRunner({ pluginDir })
    for (const body of [{}, { toolName: '' }, { toolName: 7 }]) {
      const reply = await postJson<{ error: { code: string } }>(runner.url('/mcp/call-tool'), body)
      expect(reply.status).toBe(400)
      expect(reply.body.error.code).toBe('BAD_REQUEST')
    }
  })
})
