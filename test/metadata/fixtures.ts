import type { Metadata } from '../../src/contract/index.js'

/** A worker's complete /metadata answer (CONTRACT.md §3). */
export const goodMetadata: Metadata = {
  configSchema: { apiKey: { type: 'string', label: 'API key', required: true, encrypted: true, env: 'ECHO_KEY', default: null } },
  authMethods: [{ type: 'apiKey', id: 'apiKey', label: 'API key', configField: 'apiKey' }],
  uiExtensions: [{ slot: 'settings', component: 'EchoSettings' }],
  pages: [],
  routes: [
    { method: 'POST', path: '/webhook' },
    { method: 'GET', path: '/items/:id' },
  ],
  mcp: { local: [], external: [] },
}

export const otherMetadata: Metadata = { ...goodMetadata, routes: [{ method: 'GET', path: '/v2/items' }] }

/** Fails the schema: an unknown config field type and a route path without a leading slash. */
export const invalidMetadata = {
  configSchema: { apiKey: { type: 'password' } },
  routes: [{ method: 'GET', path: 'items' }],
}
