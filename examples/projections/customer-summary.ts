import type { CodeProjection } from '../../src/projections/types.js'

// One document per customer, fed by customer streams and by their orders: a different document id
// than the event's stream, and a read of other documents through ctx.query.

export interface CustomerSummary {
  customerId: string
  name?: string
  email?: string
  orders: number
  lifetimeValue: number
  lastOrderAt?: string
}

const empty = (customerId: string): CustomerSummary => ({ customerId, orders: 0, lifetimeValue: 0 })

export const projection: CodeProjection = {
  name: 'customer-summary',
  source: { categories: ['customer', 'order'], types: ['CustomerRegistered', 'CustomerRenamed', 'OrderPlaced'] },
  handlers: {
    CustomerRegistered: async (event, ctx) => {
      const data = event.data as { customerId: string; name: string; email: string }
      const current = ((await ctx.load(data.customerId)) as CustomerSummary | undefined) ?? empty(data.customerId)
      await ctx.store(data.customerId, { ...current, name: data.name, email: data.email })
    },
    CustomerRenamed: async (event, ctx) => {
      const data = event.data as { customerId: string; name: string }
      const current = ((await ctx.load(data.customerId)) as CustomerSummary | undefined) ?? empty(data.customerId)
      await ctx.store(data.customerId, { ...current, name: data.name })
    },
    OrderPlaced: async (event, ctx) => {
      const data = event.data as { customerId: string; total: number }
      const current = ((await ctx.load(data.customerId)) as CustomerSummary | undefined) ?? empty(data.customerId)
      await ctx.store(data.customerId, {
        ...current,
        orders: current.orders + 1,
        lifetimeValue: Math.round((current.lifetimeValue + data.total) * 100) / 100,
        lastOrderAt: event.createdAt,
      })
    },
  },
}
