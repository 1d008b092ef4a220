import { resolve } from 'node:path'
import type { HayLogger, McpServerInstance, StdioMcpOptions } from '../../types.js'
import { isRecord } from '../guards.js'

// Hay's `ctx.mcp.startLocalStdio`: a child speaking newline-delimited JSON-RPC 2.0 on stdio.

interface Pending {
  resolve: (value: unknown) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

const STOP_GRACE_MS = 2_000

export function startStdioServer(options: StdioMcpOptions, pluginDir: string, logger: HayLogger): McpServerInstance {
  // Loaded here: only plugins that start a stdio server pay for child_process and readline.
  const { spawn } = process.getBuiltinModule('node:child_process')
  const { createInterface } = process.getBuiltinModule('node:readline')
  const timeoutMs = options.timeout ?? 30_000
  // 'node' means this very binary: workers run with a minimal PATH (CONTRACT.md §2).
  const command = options.command === 'node' ? process.execPath : options.command
  const child = spawn(command, options.args, {
    cwd: resolve(pluginDir, options.cwd),
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const pending = new Map<number, Pending>()
  let nextId = 1
  let exited = false

  const failAll = (err: Error) => {
    for (const p of pending.values()) {
      clearTimeout(p.timer)
      p.reject(err)
    }
    pending.clear()
  }

  createInterface({ input: child.stdout }).on('line', (line) => {
    let msg: unknown
    try {
      msg = JSON.parse(line)
    } catch {
      return // servers may print non-protocol lines; they are not replies
    }
    if (!isRecord(msg) || typeof msg.id !== 'number') return
    const p = pending.get(msg.id)
    if (!p) return
    pending.delete(msg.id)
    clearTimeout(p.timer)
    const error = msg.error
    if (error !== undefined) {
      p.reject(new Error(isRecord(error) && typeof error.message === 'string' ? error.message : 'MCP request failed'))
    } else {
      p.resolve(msg.result)
    }
  })
  // A write to a server that just died fails with EPIPE; its 'exit' already rejects the callers.
  child.stdin.on('error', () => {})
  child.stderr.on('data', (chunk: Buffer) => logger.debug(`[mcp:${options.id}] ${chunk.toString().trimEnd()}`))
  child.on('error', (err) => {
    exited = true
    failAll(err)
  })
  child.on('exit', (code, signal) => {
    exited = true
    failAll(new Error(`MCP server "${options.id}" exited (${signal ?? code})`))
  })

  const request = (method: string, params: unknown) =>
    new Promise<unknown>((resolvePromise, reject) => {
      if (exited) return reject(new Error(`MCP server "${options.id}" is not running`))
      const id = nextId++
      const timer = setTimeout(() => {
        pending.delete(id)
        reject(new Error(`MCP request ${method} timed out after ${timeoutMs} ms`))
      }, timeoutMs)
      pending.set(id, { resolve: resolvePromise, reject, timer })
      child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`)
    })

  return {
    async listTools() {
      const result = await request('tools/list', {})
      if (Array.isArray(result)) return result
      return isRecord(result) && Array.isArray(result.tools) ? result.tools : []
    },
    callTool: (name, args) => request('tools/call', { name, arguments: args ?? {} }),
    async stop() {
      if (exited) return
      const gone = new Promise<void>((r) => child.once('exit', () => r()))
      child.stdin.end()
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS)
      try {
        await gone
      } finally {
        clearTimeout(timer)
      }
    },
  }
}
