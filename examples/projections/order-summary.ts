import type { CodeProjection, ProjectionEvent } from '../../src/projections/types.js'

// One document per order stream: what was ordered, what it costs, where it stands.
// Copy this file into PROJECTIONS_DIR (compiled to .js, or as .ts when the server runs under tsx).

interface OrderPlaced {
  orderId: string
  customerId: string
  items: { sku: string; qty: number; unitPrice: number }[]
  currency: string
  total: number
}

interface OrderUpdated {
  items?: OrderPlaced['items']
  total?: number
}

interface OrderShipped {
  carrier?: string
  trackingNumber?: string
}

export interface OrderSummary {
  orderId: string
  customerId: string
  status: 'placed' | 'shipped'
  itemCount: number
  total: number
  currency: string
  placedAt: string
  updatedAt: string
  shippedAt?: string
  carrier?: string
  trackingNumber?: string
}

const itemCount = (items: OrderPlaced['items']): number => items.reduce((sum, item) => sum + item.qty, 0)

export const projection: CodeProjection = {
  name: 'order-summary',
  source: { categories: ['order'], types: ['OrderPlaced', 'OrderUpdated', 'OrderShipped'] },
  handlers: {
    OrderPlaced: async (event: ProjectionEvent, ctx) => {
      const data = event.data as OrderPlaced
      const summary: OrderSummary = {
        orderId: data.orderId,
        customerId: data.customerId,
        status: 'placed',
        itemCount: itemCount(data.items),
        total: data.total,
        currency: data.currency,
        placedAt: event.createdAt,
        updatedAt: event.createdAt,
      }
      await ctx.store(event.streamId, { ...summary })
    },
    OrderUpdated: async (event, ctx) => {
      const summary = (await ctx.load(event.streamId)) as OrderSummary | undefined
      if (!summary) return
      const data = event.data as OrderUpdated
      await ctx.store(event.streamId, {
        ...summary,
        ...(data.items ? { itemCount: itemCount(data.items) } : {}),
        ...(data.total !== undefined ? { total: data.total } : {}),
        updatedAt: event.createdAt,
      })
    },
    OrderShipped: async (event, ctx) => {
      const summary = (await ctx.load(event.streamId)) as OrderSummary | undefined
      if (!summary) return
      const data = event.data as OrderShipped
      await ctx.store(event.streamId, { ...summary, status: 'shipped', shippedAt: event.createdAt, updatedAt: event.createdAt, ...data })
    },
  },
}
