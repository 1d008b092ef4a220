// Gates the test controls (STYLE.md §11: no sleeps, no timing windows). A fixture plugin that calls
// GET <gate.url>/<name> is held there until the test opens that gate: the test waits for the
// arrival, does what it must while the plugin is held, then opens it. See test/fixtures/plugins/gated.
import { once } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { onTestFinished } from 'vitest'

/** How long `arrived` waits before failing the test with what it saw: a bound, not a timing. */
const ARRIVAL_BOUND_MS = 15_000

export interface Gate {
  /** Base URL for the plugin's GATE_URL. */
  url: string
  /** Resolves once `count` requests in all have reached gate `name`, with their query parameters. */
  arrived(name: string, count?: number): Promise<URLSearchParams[]>
  /** Lets every held and every later request at gate `name` through. */
  open(name: string): void
  /** Requests that have reached gate `name` so far. */
  arrivals(name: string): URLSearchParams[]
}

interface GateState {
  isOpen: boolean
  held: ServerResponse[]
  arrivals: URLSearchParams[]
  onArrival: Array<() => void>
}

/** A gate server on 127.0.0.1, port 0; every gate is opened and the server closed after the test. */
export async function startGate(): Promise<Gate> {
  const gates = new Map<string, GateState>()
  const gate = (name: string) => {
    let state = gates.get(name)
    if (!state) {
      state = { isOpen: false, held: [], arrivals: [], onArrival: [] }
      gates.set(name, state)
    }
    return state
  }
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://gate')
    const state = gate(decodeURIComponent(url.pathname.slice(1)))
    state.arrivals.push(url.searchParams)
    for (const notify of state.onArrival.splice(0)) notify()
    if (state.isOpen) res.end('open')
    else state.held.push(res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const openAll = () => {
    for (const name of gates.keys()) open(name)
  }
  onTestFinished(async () => {
    openAll()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  // A test that fails while the plugin is held must not leave the gateway's teardown draining it:
  // this clean-up, registered once the test waits for an arrival (so after the gateway's own, as the
  // gateway needs GATE_URL), runs before that teardown (onTestFinished runs them as a stack).
  let isOpenedAtEnd = false

  function open(name: string): void {
    const state = gate(name)
    state.isOpen = true
    for (const res of state.held.splice(0)) res.end('open')
  }

  async function arrived(name: string, count = 1): Promise<URLSearchParams[]> {
    if (!isOpenedAtEnd) {
      isOpenedAtEnd = true
      onTestFinished(openAll)
    }
    const state = gate(name)
    const deadline = Date.now() + ARRIVAL_BOUND_MS
    while (state.arrivals.length < count) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`gate ${name}: ${state.arrivals.length} of ${count} arrivals after ${ARRIVAL_BOUND_MS} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        state.onArrival.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    return state.arrivals.slice(0, count)
  }

  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrived,
    open,
    arrivals: (name) => [...gate(name).arrivals],
  }
}
