// @ts-check
import { defineHayPlugin } from '@plugin-gateway/sdk'

/**
 * An MCP tool result (CallToolResult): text for the model, structured data for programs.
 * @param {string} text
 * @param {Record<string, unknown>} [structured]
 */
const result = (text, structured) => ({ content: [{ type: 'text', text }], ...(structured && { structuredContent: structured }) })

/** @param {string} message */
const toolError = (message) => ({ content: [{ type: 'text', text: message }], isError: true })

export default defineHayPlugin(() => ({
  name: 'Tools',

  onInitialize({ register }) {
    register.mcp.tool({
      name: 'add',
      description: 'Adds two numbers.',
      input_schema: {
        type: 'object',
        properties: { a: { type: 'number' }, b: { type: 'number' } },
        required: ['a', 'b'],
      },
      handler: ({ a, b }) => {
        if (typeof a !== 'number' || typeof b !== 'number') return toolError('a and b must be numbers')
        return result(String(a + b), { sum: a + b })
      },
    })

    register.mcp.tool({
      name: 'uppercase',
      description: 'Upper-cases a string.',
      input_schema: {
        type: 'object',
        properties: { text: { type: 'string' } },
        required: ['text'],
      },
      handler: ({ text }, ctx) => {
        if (typeof text !== 'string') return toolError('text must be a string')
        ctx.logger.debug('uppercase called', { length: text.length })
        return result(text.toUpperCase())
      },
    })
  },
}))
